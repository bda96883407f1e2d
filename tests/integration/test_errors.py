"""Every user mistake in the contract: a clear exception, raised before any weight changes."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import torchcompile as tc


def _classifier(head=None):
    layers = [torch.nn.Linear(4, 3)] + ([head] if head is not None else [])
    return tc.Model(torch.nn.Sequential(*layers), device="cpu")


def _snapshot(model):
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def _assert_unchanged(model, before):
    after = model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.fixture
def data(rng):
    return rng.normal(size=(20, 4)).astype("float32"), rng.integers(0, 3, size=20)


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_calling_before_compile_says_to_compile(method, data):
    with pytest.raises(RuntimeError, match=rf"compile\(\) before {method}"):
        getattr(_classifier(), method)(*data)


@pytest.mark.parametrize(
    "argument, value, suggestion",
    [
        ("loss", "sparse_categorical_crossentropi", "sparse_categorical_crossentropy"),
        ("metrics", ["acuracy"], None),
        ("metrics", ["mean_absolute_eror"], "mean_absolute_error"),
        ("optimizer", "adamm", "adam"),
    ],
)
def test_unknown_id_fails_at_compile_with_close_matches(argument, value, suggestion):
    model = _classifier()
    kwargs = {"optimizer": "sgd", "loss": "mse", argument: value}
    with pytest.raises(ValueError, match="Unknown") as info:
        model.compile(**kwargs)
    if suggestion:
        assert f"Did you mean '{suggestion}'" in str(info.value) or f"'{suggestion}'" in str(info.value)


def test_x_and_y_of_different_lengths_are_refused_before_training(data):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = _snapshot(model)
    with pytest.raises(ValueError, match="x has 20, y has 19"):
        model.fit(data[0], data[1][:19], verbose=0)
    _assert_unchanged(model, before)


def test_probability_loss_fed_logits_names_the_loss_and_the_fix(data):
    model = _classifier()  # ends in a Linear layer: logits
    model.compile(tc.optimizers.SGD(learning_rate=1.0), "sparse_categorical_crossentropy")
    x = data[0] * 10
    before = _snapshot(model)
    with pytest.raises(ValueError) as info:
        model.fit(x, data[1], verbose=0)
    message = str(info.value)
    assert "SparseCategoricalCrossentropy" in message or "sparse_categorical_crossentropy" in message
    assert "from_logits=True" in message and "Softmax" in message
    _assert_unchanged(model, before)


def test_binary_crossentropy_fed_logits_suggests_sigmoid(rng):
    model = tc.Model(torch.nn.Linear(4, 1), device="cpu")
    model.compile("sgd", "binary_crossentropy")
    x = rng.normal(size=(16, 4)).astype("float32") * 10
    with pytest.raises(ValueError, match="Sigmoid"):
        model.fit(x, (x[:, :1] > 0).astype("float32"), verbose=0)


def test_irreconcilable_shapes_name_both_shapes(rng):
    model = tc.Model(torch.nn.Linear(4, 3), device="cpu")
    model.compile("sgd", "mse")
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"\(\d+, 4\).*\(\d+, 3\)|\(\d+, 3\).*\(\d+, 4\)"):
        model.fit(rng.normal(size=(8, 4)).astype("float32"), np.zeros((8, 4), "float32"), verbose=0)
    _assert_unchanged(model, before)


def test_n_vs_n_by_1_targets_do_not_broadcast_in_a_torch_loss(rng):
    model = tc.Model(torch.nn.Linear(4, 1), device="cpu")
    model.compile(tc.optimizers.SGD(learning_rate=0.0), torch.nn.MSELoss())
    x, y = rng.normal(size=(8, 4)).astype("float32"), rng.normal(size=8).astype("float32")
    ours = model.evaluate(x, y, verbose=0)
    expected = torch.mean((model.module(torch.from_numpy(x)).squeeze(1) - torch.from_numpy(y)) ** 2)
    assert ours == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("labels", [np.array([0, 1, 3, 2]), np.array([0, -1, 1, 2])])
def test_sparse_labels_out_of_range_are_refused_before_training(labels, rng):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = _snapshot(model)
    with pytest.raises(ValueError, match="3"):
        model.fit(rng.normal(size=(4, 4)).astype("float32"), labels, verbose=0)
    _assert_unchanged(model, before)


def test_sparse_label_out_of_range_in_a_later_dataloader_batch_is_refused(rng):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 7])
    loader = DataLoader(TensorDataset(torch.randn(8, 4), labels), batch_size=4)
    with pytest.raises(ValueError, match="7"):
        model.fit(loader, verbose=0)


def test_non_integer_sparse_labels_are_refused(rng):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="integer"):
        model.fit(rng.normal(size=(4, 4)).astype("float32"), np.array([0.0, 1.5, 2.0, 1.0]), verbose=0)


def test_batch_size_with_a_dataloader_is_refused(data):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    loader = DataLoader(TensorDataset(torch.from_numpy(data[0]), torch.from_numpy(data[1])), batch_size=5)
    with pytest.raises(ValueError, match="batch_size=64"):
        model.fit(loader, batch_size=64, verbose=0)


def test_validation_split_with_a_generator_is_refused(data):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    batches = ((torch.from_numpy(data[0]), torch.from_numpy(data[1])) for _ in range(2))
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(batches, validation_split=0.2, verbose=0)


def test_fit_without_a_loss_says_to_compile_with_one(data):
    model = _classifier()
    model.compile("sgd")
    with pytest.raises(ValueError, match="loss"):
        model.fit(*data, verbose=0)


def test_wrapping_something_that_is_not_a_module_is_refused():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        tc.Model(lambda x: x)


@pytest.mark.parametrize("verbose", [3, "yes", True])
def test_bad_verbose_is_refused(verbose, data):
    model = _classifier(torch.nn.Softmax(-1))
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="verbose"):
        model.fit(*data, verbose=verbose)
