# SPDX-License-Identifier: Apache-2.0
"""Every input kind api.md promises, through fit, evaluate and predict, and every data error."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

import torchcompile as tc

N = 64


class Recorder(nn.Module):
    """A linear layer that remembers the batch sizes it was called with."""

    def __init__(self, features=4, outputs=1):
        super().__init__()
        self.linear = nn.Linear(features, outputs)
        self.batch_sizes = []

    def forward(self, x):
        self.batch_sizes.append(x.shape[0])
        return self.linear(x)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.image, self.meta = nn.Linear(4, 1), nn.Linear(2, 1)

    def forward(self, image, meta):
        return self.image(image) + self.meta(meta)


class OneDictInput(TwoInputs):
    def forward(self, inputs):
        return self.image(inputs["a"]) + self.meta(inputs["b"])


class TwoOutputs(nn.Module):
    def __init__(self, as_dict=False):
        super().__init__()
        self.reg, self.cls, self.as_dict = nn.Linear(4, 1), nn.Linear(4, 3), as_dict

    def forward(self, x):
        reg, cls = self.reg(x), self.cls(x)
        return {"reg": reg, "cls": cls} if self.as_dict else (reg, cls)


class SampleStream(IterableDataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


class CountBatches(tc.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.test = 0, []

    def on_train_batch_end(self, batch, logs=None):
        self.train += 1

    def on_test_begin(self, logs=None):
        self.test.append(0)

    def on_test_batch_end(self, batch, logs=None):
        self.test[-1] += 1


@pytest.fixture
def data(rng):
    x = rng.standard_normal((N, 4)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")).astype("float32")


def _model(module=None, loss="mse", **kwargs):
    model = tc.Model(module if module is not None else Recorder(), device="cpu")
    model.compile(optimizer="sgd", loss=loss, **kwargs)
    return model


def _loader(x, y):
    return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=8)


def _endless(x, y, batch_size=8, drawn=None):
    while True:
        for start in range(0, len(x), batch_size):
            if drawn is not None:
                drawn.append(start)
            yield x[start : start + batch_size], y[start : start + batch_size]


# ------------------------------------------------------------------ arrays
@pytest.mark.parametrize("kind", ["numpy_float32", "numpy_float64", "tensor", "python_list"])
def test_fit_evaluate_predict_accept_each_array_kind(kind, data):
    x, y = data
    convert = {
        "numpy_float32": lambda a: a,
        "numpy_float64": lambda a: a.astype("float64"),
        "tensor": torch.from_numpy,
        "python_list": lambda a: a.tolist(),
    }[kind]
    model = _model()
    history = model.fit(convert(x), convert(y), batch_size=16, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.module.batch_sizes[:4] == [16] * 4
    assert isinstance(model.evaluate(convert(x), convert(y), verbose=0), float)
    prediction = model.predict(convert(x), verbose=0)
    assert prediction.shape == (N, 1) and prediction.dtype == np.float32


def test_fit_steps_per_epoch_on_arrays_sets_the_batch_size_as_keras(data):
    model = _model()
    model.fit(*data, steps_per_epoch=4, epochs=1, verbose=0)  # Keras: batch_size = ceil(64 / 4)
    assert model.module.batch_sizes == [16] * 4


@pytest.mark.parametrize("container", [tuple, list])
def test_two_input_module_takes_a_tuple_or_list_positionally(container, data, rng):
    x, y = data
    meta = rng.standard_normal((N, 2)).astype("float32")
    model = _model(TwoInputs())
    assert len(model.fit(container([x, meta]), y, batch_size=16, verbose=0).history["loss"]) == 1
    assert isinstance(model.evaluate(container([x, meta]), y, verbose=0), float)
    assert model.predict(container([x, meta]), verbose=0).shape == (N, 1)


def test_dict_x_goes_in_as_keyword_arguments(data, rng):
    x, y = data
    inputs = {"meta": rng.standard_normal((N, 2)).astype("float32"), "image": x}
    model = _model(TwoInputs())
    model.fit(inputs, y, batch_size=16, verbose=0)
    expected = model.module(image=torch.from_numpy(x), meta=torch.from_numpy(inputs["meta"]))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), expected.detach().numpy(), rtol=1e-6)


def test_dict_x_goes_in_as_one_dict_when_forward_takes_one_input(data, rng):
    x, y = data
    inputs = {"a": x, "b": rng.standard_normal((N, 2)).astype("float32")}
    model = _model(OneDictInput())
    model.fit(inputs, y, batch_size=16, verbose=0)
    assert model.predict(inputs, verbose=0).shape == (N, 1)


@pytest.mark.parametrize("keys, unknown", [(("image", "extra"), "['extra']"), (("a", "b"), "['a', 'b']")])
def test_dict_x_with_keys_that_match_no_forward_argument_is_refused(keys, unknown, data):
    x, y = data
    inputs = {keys[0]: x, keys[1]: x[:, :2]}
    match = r"keys \S.*match no argument of TwoInputs.forward\(image, meta\)"
    with pytest.raises(ValueError, match=match) as info:
        _model(TwoInputs()).fit(inputs, y, verbose=0)
    assert unknown in str(info.value) and "Received: x keys=" in str(info.value)


# ------------------------------------------------------------------ several outputs
def test_two_output_module_with_tuple_targets(data, rng):
    x, y = data
    labels = rng.integers(0, 3, N)
    model = _model(
        TwoOutputs(),
        loss=["mse", tc.losses.SparseCategoricalCrossentropy(from_logits=True)],
        metrics=[[], ["accuracy"]],
    )
    history = model.fit(x, (y, labels), batch_size=16, epochs=2, verbose=0)
    assert list(history.history) == ["loss", "output_1_loss", "output_2_accuracy", "output_2_loss"]  # sorted
    logs = model.evaluate(x, (y, labels), verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["output_1_loss"] + logs["output_2_loss"], rel=1e-5)
    reg, cls = model.predict(x, verbose=0)
    assert reg.shape == (N, 1) and cls.shape == (N, 3)


def test_two_output_module_with_dict_targets_and_loss_weights(data, rng):
    x, y = data
    labels = rng.integers(0, 3, N)
    model = _model(
        TwoOutputs(as_dict=True),
        loss_weights={"reg": 2.0, "cls": 1.0},
        loss={"reg": "mse", "cls": tc.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    history = model.fit(
        x, {"cls": labels, "reg": y}, batch_size=16, verbose=0, validation_data=(x, {"cls": labels, "reg": y})
    )
    assert {"reg_loss", "cls_loss", "val_reg_loss", "val_cls_loss"} <= set(history.history)
    logs = model.evaluate(x, {"cls": labels, "reg": y}, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(2 * logs["reg_loss"] + logs["cls_loss"], rel=1e-5)
    assert set(model.predict(x, verbose=0)) == {"reg", "cls"}


# ------------------------------------------------------------------ Datasets, DataLoaders, generators
def test_map_style_dataset_is_batched_with_batch_size(data):
    dataset = TensorDataset(*map(torch.from_numpy, data))
    model = _model()
    model.fit(dataset, batch_size=16, epochs=1, verbose=0)
    assert model.module.batch_sizes == [16] * 4
    assert isinstance(model.evaluate(dataset, verbose=0), float)
    assert model.predict(dataset, batch_size=10, verbose=0).shape == (N, 1)


def test_iterable_dataset_is_batched_with_batch_size(data):
    model = _model()
    model.fit(SampleStream(*data), batch_size=8, epochs=2, verbose=0)
    assert model.module.batch_sizes == [8] * 16
    assert isinstance(model.evaluate(SampleStream(*data), verbose=0), float)
    assert model.predict(SampleStream(*data), verbose=0).shape == (N, 1)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_is_used_as_is(num_workers, data):
    loader = DataLoader(TensorDataset(*map(torch.from_numpy, data)), batch_size=10, num_workers=num_workers)
    model = _model()
    history = model.fit(loader, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.module.batch_sizes[:7] == [10] * 6 + [4]
    assert isinstance(model.evaluate(loader, verbose=0), float)
    assert model.predict(loader, verbose=0).shape == (N, 1)


def test_dataloader_keeps_its_sampler(data):
    dataset = TensorDataset(*map(torch.from_numpy, data))
    sampler = torch.utils.data.SubsetRandomSampler(range(20))
    model = _model()
    model.fit(DataLoader(dataset, batch_size=8, sampler=sampler), verbose=0)
    assert model.module.batch_sizes == [8, 8, 4]


def test_endless_generator_runs_steps_per_epoch_each_epoch(data):
    drawn = []
    model = _model()
    history = model.fit(_endless(*data, drawn=drawn), steps_per_epoch=5, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and len(model.module.batch_sizes) == 15 and len(drawn) == 15
    assert isinstance(model.evaluate(_endless(*data), steps=2, verbose=0), float)
    assert model.predict(_endless(*data), steps=3, verbose=0).shape == (24, 1)


def test_finite_generator_of_numpy_batches_with_sample_weights_runs_one_epoch(data):
    x, y = data
    model = _model()
    history = model.fit(((x[i : i + 16], y[i : i + 16], np.zeros(16)) for i in range(0, N, 16)), verbose=0)
    assert history.history["loss"] == [0.0] and model.module.batch_sizes == [16] * 4


def test_generator_running_out_warns_and_stops_training(data):
    x, y = data
    batches = ((x[i : i + 8], y[i : i + 8]) for i in range(0, 40, 8))  # 5 batches
    model = _model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(batches, steps_per_epoch=2, epochs=6, verbose=0)
    assert len(history.history["loss"]) == 3 and len(model.module.batch_sizes) == 5


def test_arrays_running_out_mid_epoch_warn_and_continue_as_keras(data):
    model = _model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(*data, batch_size=16, steps_per_epoch=3, epochs=3, verbose=0)
    # 4 batches a pass, 3 steps an epoch: 3, then 1 (ran out, warned), then 3 from a fresh pass.
    assert len(history.history["loss"]) == 3 and len(model.module.batch_sizes) == 7


# ------------------------------------------------------------------ sample_weight and class_weight
def test_sample_weight_weighs_each_sample_loss(data, rng):
    x, y = data
    weights = rng.random(N).astype("float32")
    model = _model()
    per_sample = ((model.predict(x, verbose=0) - y) ** 2).mean(axis=1)
    loss = model.evaluate(x, y, sample_weight=weights, batch_size=N, verbose=0)
    assert loss == pytest.approx(float((per_sample * weights).sum() / N), rel=1e-5)


def test_sample_weight_of_zero_removes_samples_from_the_gradient(data):
    x, y = data
    zero_half = np.r_[np.ones(N // 2), np.zeros(N // 2)].astype("float32")
    model = _model(Recorder())
    reference = copy.deepcopy(model.module)
    model.fit(x, y, sample_weight=zero_half, batch_size=N, shuffle=False, verbose=0)
    other = _model(copy.deepcopy(reference))
    other.fit(x[: N // 2], y[: N // 2], batch_size=N // 2, shuffle=False, verbose=0)
    # Half the weights are zero: the gradient is half the one on the weighted half alone.
    for a, b, c in zip(model.module.parameters(), other.module.parameters(), reference.parameters()):
        torch.testing.assert_close(a - c, (b - c) / 2, rtol=1e-4, atol=1e-6)


def test_class_weight_equals_the_matching_sample_weight(data, rng):
    x, _ = data
    labels = rng.integers(0, 3, N)
    loss = tc.losses.SparseCategoricalCrossentropy(from_logits=True)
    first = _model(Recorder(4, 3), loss=loss)
    second = _model(copy.deepcopy(first.module), loss=loss)
    first.fit(x, labels, class_weight={0: 1.0, 1: 3.0, 2: 0.5}, batch_size=16, shuffle=False, verbose=0)
    weights = np.array([1.0, 3.0, 0.5], dtype="float32")[labels]
    second.fit(x, labels, sample_weight=weights, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(first.module.parameters(), second.module.parameters()):
        torch.testing.assert_close(a, b)


def test_class_weight_works_with_a_dataloader(data, rng):
    x, _ = data
    labels = torch.from_numpy(rng.integers(0, 3, N))
    loader = DataLoader(TensorDataset(torch.from_numpy(x), labels), batch_size=16)
    model = _model(Recorder(4, 3), loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert len(model.fit(loader, class_weight={0: 1.0, 1: 2.0}, verbose=0).history["loss"]) == 1


# ------------------------------------------------------------------ validation
VALIDATION_KINDS = {
    "tuple": lambda x, y: (x, y),
    "list": lambda x, y: [x, y],
    "tuple_with_sample_weight": lambda x, y: (x, y, np.ones(len(x), "float32")),
    "dataset": lambda x, y: TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
    "dataloader": lambda x, y: _loader(x, y),
}


@pytest.mark.parametrize("kind", list(VALIDATION_KINDS))
def test_validation_data_kinds(kind, data):  # fit's batch_size reaches arrays and Datasets, not a DataLoader
    validation_data = VALIDATION_KINDS[kind](*data)
    history = _model().fit(*data, batch_size=16, epochs=2, verbose=0, validation_data=validation_data)
    assert len(history.history["val_loss"]) == 2


def test_validation_data_generator_with_validation_steps(data):
    counter = CountBatches()
    history = _model().fit(
        *data, epochs=2, verbose=0, callbacks=[counter], validation_data=_endless(*data), validation_steps=3
    )
    assert len(history.history["val_loss"]) == 2 and counter.test == [3, 3]


def test_validation_split_takes_the_last_fraction(data):
    counter = CountBatches()
    model = _model()
    model.fit(*data, batch_size=8, validation_split=0.25, verbose=0, callbacks=[counter])
    assert counter.train == 6 and counter.test == [2]  # 48 train, 16 validation samples


def test_validation_steps_limits_validation_batches(data):
    counter = CountBatches()
    _model().fit(
        *data, batch_size=8, epochs=2, validation_data=data, validation_steps=3, verbose=0, callbacks=[counter]
    )
    assert counter.test == [3, 3]  # evaluation starts a fresh pass each time (Keras)


@pytest.mark.parametrize("validation_batch_size, expected", [(None, 4), (32, 2), (64, 1)])
def test_validation_batch_size_defaults_to_batch_size(validation_batch_size, expected, data):
    counter = CountBatches()
    _model().fit(
        *data,
        batch_size=16,
        validation_data=data,
        validation_batch_size=validation_batch_size,
        verbose=0,
        callbacks=[counter],
    )
    assert counter.test == [expected]


@pytest.mark.parametrize("validation_freq, validated", [(1, 4), (2, 2), (3, 1), ([1, 3], 2), ([4], 1)])
def test_validation_freq_picks_the_epochs(validation_freq, validated, data):
    counter = CountBatches()
    history = _model().fit(
        *data,
        batch_size=32,
        epochs=4,
        validation_data=data,
        verbose=0,
        validation_freq=validation_freq,
        callbacks=[counter],
    )
    assert len(history.history["val_loss"]) == validated == len(counter.test)


# ------------------------------------------------------------------ errors
ERRORS = {
    "batch_size_with_dataloader": (
        lambda m, x, y: m.fit(_loader(x, y), batch_size=16),
        "`batch_size` cannot be used with a DataLoader",
    ),
    "batch_size_with_generator": (
        lambda m, x, y: m.fit(_endless(x, y), batch_size=16, steps_per_epoch=2),
        "`batch_size` cannot be used with a generator",
    ),
    "validation_split_with_dataloader": (
        lambda m, x, y: m.fit(_loader(x, y), validation_split=0.2),
        "`validation_split` only works with in-memory arrays",
    ),
    "validation_split_with_generator": (
        lambda m, x, y: m.fit(_endless(x, y), validation_split=0.2),
        "`validation_split` only works with in-memory arrays",
    ),
    "empty_arrays": (lambda m, x, y: m.fit(x[:0], y[:0]), "input data is empty"),
    "empty_list": (lambda m, x, y: m.fit([], []), "input data is empty"),
    "empty_generator": (lambda m, x, y: m.fit(iter([])), "input data is empty"),
    "empty_dataset": (
        lambda m, x, y: m.fit(TensorDataset(torch.zeros(0, 4), torch.zeros(0, 1))),
        "input data is empty",
    ),
    "x_y_lengths": (lambda m, x, y: m.fit(x, y[:-1]), "x has 64, y has 63"),
    "sample_weight_length": (lambda m, x, y: m.fit(x, y, sample_weight=np.ones(10)), "sample_weight has 10"),
    "list_inputs_lengths": (
        lambda m, x, y: _model(TwoInputs()).fit([x, x[:-3, :2]], y),
        r"arrays in `x` have different numbers of samples \[61, 64\]",
    ),
    "ragged_list": (lambda m, x, y: m.fit([[1.0, 2.0], [3.0]], [1.0, 2.0]), "rectangular"),
    "class_weight_unknown_class": (
        lambda m, x, y: m.fit(x, (y > 0).astype("int64"), class_weight={0: 1, 5: 2}),
        r"names classes \[5\] that do not exist",
    ),
    "class_weight_negative_key": (
        lambda m, x, y: m.fit(x, (y > 0).astype("int64"), class_weight={-1: 2.0}),
        "keys must be class indices",
    ),
    "class_weight_with_sample_weight": (
        lambda m, x, y: m.fit(x, (y > 0).astype("int64"), class_weight={0: 2.0}, sample_weight=np.ones(N)),
        "either `sample_weight` or `class_weight`",
    ),
    "y_with_dataloader": (lambda m, x, y: m.fit(_loader(x, y), y), "`y` cannot be passed separately"),
    "validation_batch_size_with_dataloader": (
        lambda m, x, y: m.fit(x, y, validation_data=_loader(x, y), validation_batch_size=16),
        "`batch_size` cannot be used with a DataLoader",
    ),
    "generator_without_steps_for_two_epochs": (
        lambda m, x, y: m.fit(iter([(x, y)]), epochs=2),
        "can be read only once.*steps_per_epoch",
    ),
    "validation_generator_without_steps": (
        lambda m, x, y: m.fit(x, y, epochs=2, validation_data=iter([(x, y)])),
        "`validation_data` is a generator.*validation_steps",
    ),
    "validation_data_of_four": (lambda m, x, y: m.fit(x, y, validation_data=(x, y, y, y)), "`validation_data` must be"),
    "bad_validation_freq": (
        lambda m, x, y: m.fit(x, y, validation_data=(x, y), validation_freq=0),
        "`validation_freq` must be",
    ),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_data_errors_name_the_culprit_before_training(name, data):
    call, message = ERRORS[name]
    model = _model()
    with pytest.raises(ValueError, match=message) as info:
        call(model, *data)
    assert "Received" in str(info.value) and model.module.batch_sizes == []


# ------------------------------------------------------------------ the caller's data is safe (issue 14, items 1-2)
class InPlace(nn.Module):
    """A forward that writes into its input, as nn.ReLU(inplace=True) or x.sub_() do."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, x):
        return self.linear(x.sub_(1.0).relu_())


IN_PLACE_CALLS = {
    "predict": lambda m, x, y: m.predict(x, verbose=0),
    "evaluate": lambda m, x, y: m.evaluate(x, y, verbose=0),
    "fit_unshuffled": lambda m, x, y: m.fit(x, y, shuffle=False, verbose=0),
    "fit_shuffled": lambda m, x, y: m.fit(x, y, verbose=0),
    "validation_data": lambda m, x, y: m.fit(x[:8], y[:8], validation_data=(x, y), verbose=0),
    "validation_split": lambda m, x, y: m.fit(x, y, validation_split=0.5, shuffle=False, verbose=0),
    "generator": lambda m, x, y: m.predict(iter([x]), verbose=0),
}


@pytest.mark.parametrize("call", list(IN_PLACE_CALLS))
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_forward_writing_into_its_input_leaves_the_callers_arrays_unchanged(call, kind, data):
    x, y = data
    x = x if kind == "numpy" else torch.from_numpy(x)
    before = copy.deepcopy(x)
    IN_PLACE_CALLS[call](_model(InPlace()), x, y)
    assert (x == before).all()


def test_evaluate_twice_on_the_same_data_gives_the_same_loss_with_an_in_place_forward(data):
    model = _model(InPlace())
    assert model.evaluate(*data, verbose=0) == model.evaluate(*data, verbose=0)


def test_fit_leaves_grad_of_inputs_that_require_grad_empty(data):
    x, y = (torch.from_numpy(a).requires_grad_() for a in data)
    _model().fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert x.grad is None and y.grad is None


# ------------------------------------------------------------------ pandas, PyDataset, Hugging Face datasets (issue 15)
def _frame(data):
    pd = pytest.importorskip("pandas")
    x, y = data
    frame = pd.DataFrame(x.astype("float64"), columns=["a", "b", "c", "d"])
    frame["target"] = y[:, 0]
    return frame


def test_fit_evaluate_predict_on_a_dataframe_and_its_popped_target(data):
    frame = _frame(data)
    model = _model()
    target = frame.pop("target")
    history = model.fit(frame, target, batch_size=16, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.module.batch_sizes[:4] == [16] * 4
    assert model.predict(frame, verbose=0).shape == (N, 1) and np.isfinite(model.evaluate(frame, target, verbose=0))


def test_dataframe_validation_data_sample_weight_and_split(data):
    frame = _frame(data)
    target = frame.pop("target")
    history = _model().fit(
        frame, target, sample_weight=target * 0 + 1, validation_data=(frame[:8], target[:8]), verbose=0
    )
    assert "val_loss" in history.history
    assert "val_loss" in _model().fit(frame, target, validation_split=0.25, verbose=0).history


class ColumnInputs(nn.Module):
    """The TensorFlow regression tutorial's shape: one input per column, by name."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, a, b, c, d):
        return self.linear(torch.cat([a, b, c, d], dim=-1))


def test_dict_of_series_is_a_dict_input_by_column_name(data):
    frame = _frame(data)
    target = frame.pop("target")
    model = _model(ColumnInputs())
    model.fit(dict(frame), target, batch_size=16, verbose=0)
    assert model.predict(dict(frame), verbose=0).shape == (N, 1)


class Batches(tc.utils.PyDataset):
    def __init__(self, x, y, batch_size=16, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[rows], self.y[rows]


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_on_a_py_dataset_steps_once_per_batch(workers, data):
    model = _model()
    history = model.fit(Batches(*data, workers=workers), epochs=2, verbose=0, validation_data=Batches(*data))
    assert model.module.batch_sizes[:4] == [16] * 4 and len(history.history["val_loss"]) == 2
    assert model.predict(Batches(*data), verbose=0).shape == (N, 1)


def test_fit_on_a_dataloader_with_its_own_batch_size(data):
    model = _model()
    model.fit(_loader(*data), batch_size=8, verbose=0)
    assert model.module.batch_sizes[0] == 8


class TokenClassifier(nn.Module):
    def __init__(self, vocab=20, classes=2):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, 8), nn.Linear(8, classes)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()
        return self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))


def test_fit_on_a_hugging_face_dataset_uses_its_label_column(rng):
    datasets = pytest.importorskip("datasets")
    ids = rng.integers(0, 20, size=(40, 6))
    table = datasets.Dataset.from_dict(
        {"input_ids": ids.tolist(), "attention_mask": np.ones_like(ids).tolist(), "label": (ids[:, 0] > 9).tolist()}
    ).with_format("torch")
    model = _model(TokenClassifier(), loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(table, batch_size=8, epochs=2, validation_data=table, verbose=0)
    assert len(history.history["val_loss"]) == 2 and model.predict(table, verbose=0).shape == (40, 2)


# ------------------------------------------------------------------ inputs follow the module's dtype (issue 14, item 4)
def test_float64_module_trains_on_float64_arrays(data):
    x, y = (a.astype("float64") for a in data)
    model = _model(nn.Linear(4, 1).double())
    history = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and model.predict(x, verbose=0).dtype == np.float64


def test_bfloat16_module_trains_on_float32_arrays(data):  # the dtype-policy error's advice: module.to(bfloat16)
    model = _model(nn.Linear(4, 1).to(torch.bfloat16))
    history = model.fit(*data, batch_size=16, epochs=2, validation_data=data, verbose=0)
    assert np.isfinite(history.history["val_loss"]).all() and model.predict(data[0], verbose=0).shape == (N, 1)
