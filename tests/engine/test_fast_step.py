# SPDX-License-Identifier: Apache-2.0
"""engine/fast_step.py: the specialised default train and test steps give the general steps' results,
run only where the model's step methods are its own, and hand every other batch to the general step."""

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile.engine.fast_step import FastStep, fast_step


class GeneralStep(tc.Model):
    """The same steps, seen as overridden: fit and evaluate run the general steps on every batch."""

    def train_step(self, data):
        return super().train_step(data)

    def test_step(self, data):
        return super().test_step(data)


def _data(target, n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    labels = rng.integers(0, 3, size=n)
    y = {
        "sparse": labels,
        "onehot": np.eye(3, dtype="float32")[labels],
        "regression": rng.normal(size=(n, 3)).astype("float32"),
    }[target]
    return x, y


def _model(cls=tc.Model, dropout=0.0, softmax=False, **compile_args):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))
    if softmax:
        module.append(nn.Softmax(dim=-1))
    model = cls(module, device="cpu")
    model.compile(**{"optimizer": "adam", **compile_args})
    return model


CONFIGS = {  # each builds its own loss and metric objects: two models must not share a metric's state
    "sparse-ce-logits": ("sparse", lambda: dict(loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
                                                metrics=["accuracy"])),
    "sparse-ce-probabilities-weighted": ("sparse", lambda: dict(
        loss="sparse_categorical_crossentropy", loss_weights=0.5,
        metrics=["accuracy", "sparse_top_k_categorical_accuracy"])),
    "categorical-ce-smoothed": ("onehot", lambda: dict(
        loss=tc.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["categorical_accuracy", tc.metrics.AUC()])),
    "mse-mae": ("regression", lambda: dict(loss="mse", metrics=["mae", tc.metrics.RootMeanSquaredError()])),
    "torch-loss": ("sparse", lambda: dict(loss=nn.CrossEntropyLoss(), metrics=["accuracy"])),
    "python-function-loss": ("regression", lambda: dict(loss=lambda y, p: ((y - p) ** 2).mean(), metrics=None)),
    "sgd-momentum-dropout": ("sparse", lambda: dict(optimizer=tc.optimizers.SGD(0.05, momentum=0.9),
                                                    loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
                                                    metrics=["accuracy"])),
}  # fmt: skip


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_fast_step_gives_the_general_steps_weights_and_history(config):
    target, compile_args = CONFIGS[config]
    x, y = _data(target)
    options = dict(dropout=0.3 if "dropout" in config else 0.0, softmax="probabilities" in config)
    fast, general = _model(**options, **compile_args()), _model(GeneralStep, **options, **compile_args())
    torch.manual_seed(1)
    fast_history = fast.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25).history
    torch.manual_seed(1)
    general_history = general.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25).history
    assert fast_history.keys() == general_history.keys() and "val_loss" in fast_history
    for key in fast_history:
        assert fast_history[key] == general_history[key], key
    assert fast.evaluate(x, y, batch_size=16, verbose=0, return_dict=True) == general.evaluate(
        x, y, batch_size=16, verbose=0, return_dict=True
    )
    for (name, a), (_, b) in zip(fast.state_dict().items(), general.state_dict().items()):
        assert torch.equal(a, b), name


def _counting(step):
    calls = []

    def general(data):
        calls.append(data)
        return step(data)

    general.calls = calls
    return general


def _fast_step(model, mode="train"):
    general = _counting(model.train_step if mode == "train" else model.test_step)
    return fast_step(model, model._compiled, general, mode, overridden=[]), general


def _batches(target="sparse", n=4, batch_size=8):
    x, y = _data(target, n * batch_size)
    return [(torch.from_numpy(x[i : i + batch_size]), torch.from_numpy(y[i : i + batch_size]))
            for i in range(0, len(x), batch_size)]  # fmt: skip


def test_fast_step_leaves_only_the_first_batch_to_the_general_step():
    model = _model(loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    step, general = _fast_step(model)
    assert isinstance(step, FastStep)
    for batch in _batches():
        logs = step(batch)
    assert len(general.calls) == 1  # it builds the loss and metrics and runs the first-batch checks
    assert set(logs) == {"loss", "accuracy"}
    assert model.metrics[0].count.item() == 32  # the loss tracker saw every batch


def test_fast_step_hands_a_batch_with_sample_weights_to_the_general_step():
    model = _model(loss="mse", metrics=["mae"])
    step, general = _fast_step(model)
    batches = _batches("regression")
    for x, y in batches:
        step((x, y, torch.ones(len(x))))
    step(batches[0])
    assert len(general.calls) == len(batches)


def test_fast_step_hands_the_batch_after_a_new_check_request_to_the_general_step():
    model = _model(loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    step, general = _fast_step(model)
    batches = _batches()
    step(batches[0])
    step(batches[1])
    model._compiled.request_checks(batches[2][1])  # what a new fit does with its labels
    step(batches[2])
    assert len(general.calls) == 2


def test_fast_step_still_refuses_labels_out_of_range_in_a_second_fit():
    model = _model(loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = _data("sparse")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="label"):
        model.fit(x, np.full_like(y, 7), batch_size=16, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "method",
    ["compute_loss", "compute_metrics", "forward", "train_step"],
)
def test_fit_keeps_the_general_step_when_the_model_overrides_a_step_method(method):
    seen = []

    def override(self, *args, **kwargs):
        seen.append(method)
        return getattr(tc.Model, method)(self, *args, **kwargs)

    cls = type("Custom", (tc.Model,), {method: override})
    model = _model(cls, loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = _data("sparse", n=64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert len(seen) >= 4  # every batch went through the override, not only the first


def test_fit_keeps_the_general_step_when_the_instance_replaces_compute_loss():
    model = _model(loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    seen = []
    compute_loss = model.compute_loss

    def counting_loss(*args, **kwargs):
        seen.append(1)
        return compute_loss(*args, **kwargs)

    model.compute_loss = counting_loss
    x, y = _data("sparse", n=64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert len(seen) == 4


@pytest.mark.parametrize(
    "compile_args",
    [
        dict(dtype_policy="mixed_bfloat16"),
        dict(gradient_accumulation_steps=2),
        dict(optimizer=torch.optim.LBFGS),
        dict(loss=None),
    ],
    ids=["mixed-precision", "gradient-accumulation", "closure-optimizer", "no-loss"],
)
def test_fast_step_is_not_used_where_the_general_step_does_more(compile_args):
    args = {"loss": "sparse_categorical_crossentropy", **compile_args}
    if args.get("optimizer") is torch.optim.LBFGS:
        torch.manual_seed(0)
        module = nn.Linear(6, 3)
        model = tc.Model(module, device="cpu")
        model.compile(optimizer=torch.optim.LBFGS(module.parameters()), loss=args["loss"])
    else:
        model = _model(**args)
    assert not isinstance(_fast_step(model)[0], FastStep)


class TakesTraining(nn.Module):
    """Keras style: dropout only when called with training=True."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def forward(self, x, training=None):
        return nn.functional.dropout(self.linear(x), 0.5, training=bool(training))


class OwnNetwork(tc.Model):
    """A subclass that is its own network (no module), computing through call()."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 3)

    def call(self, x, training=None):
        return nn.functional.dropout(self.linear(x), 0.5, training=bool(training))


class OwnNetworkGeneral(OwnNetwork):
    def train_step(self, data):
        return super().train_step(data)


@pytest.mark.parametrize(
    "build",
    [
        lambda general: (GeneralStep if general else tc.Model)(TakesTraining(), device="cpu"),
        lambda general: (OwnNetworkGeneral if general else OwnNetwork)(),
    ],
    ids=["forward-takes-training", "own-network-call"],
)
def test_fast_step_passes_keras_training_argument_as_the_general_step(build):
    histories, models = [], []
    for general in (False, True):
        torch.manual_seed(0)
        model = build(general)
        model.compile(optimizer="adam", loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
        x, y = _data("sparse")
        torch.manual_seed(1)
        histories.append(model.fit(x, y, batch_size=16, epochs=2, verbose=0).history)
        models.append(model)
    assert isinstance(_fast_step(models[0])[0], FastStep)
    assert histories[0] == histories[1]
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


def test_fast_step_puts_the_module_in_training_mode():
    model = _model(dropout=0.5, loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    step, _ = _fast_step(model)
    batches = _batches()
    step(batches[0])
    model.module.eval()
    step(batches[1])
    assert model.module.training


class _Marked(torch.Tensor):
    """A tensor subclass, as some libraries return."""


def test_fast_step_gives_a_tensor_subclass_output_to_the_compiled_loss_and_metrics():
    class SubclassOutput(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(6, 3)

        def forward(self, x):
            return self.linear(x).as_subclass(_Marked)

    models = []
    for cls in (tc.Model, GeneralStep):
        torch.manual_seed(0)
        models.append(cls(SubclassOutput(), device="cpu"))
        models[-1].compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = _data("regression")
    histories = []
    for model in models:
        torch.manual_seed(1)  # the same shuffles
        histories.append(model.fit(x, y, batch_size=16, epochs=2, verbose=0).history)
    assert histories[0] == histories[1]
    assert torch.equal(models[0].module.linear.weight, models[1].module.linear.weight)


class KeywordInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 3), nn.Linear(2, 3)

    def forward(self, features, extra):
        return self.a(features) + self.b(extra)


class OneDictInput(KeywordInputs):
    def forward(self, inputs):
        return self.a(inputs["features"]) + self.b(inputs["extra"])


class DictGeneral(tc.Model):
    def train_step(self, data):
        return super().train_step(data)


@pytest.mark.parametrize("module_class", [KeywordInputs, OneDictInput], ids=["keywords", "one-dict-argument"])
def test_fast_step_takes_dict_batches_as_the_general_step(module_class):
    x, y = _data("sparse")
    inputs = {"features": x, "extra": x[:, :2] * 2}
    histories, models = [], []
    for cls in (tc.Model, DictGeneral):
        torch.manual_seed(0)
        model = cls(module_class(), device="cpu")
        model.compile(
            optimizer="adam", loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
        )
        torch.manual_seed(1)
        histories.append(model.fit(inputs, y, batch_size=16, epochs=2, verbose=0).history)
        models.append(model)
    assert histories[0] == histories[1]
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)
    step, general = _fast_step(models[0])
    batch = ({k: torch.from_numpy(v[:8]) for k, v in inputs.items()}, torch.from_numpy(y[:8]))
    step(batch)
    step(batch)
    assert len(general.calls) == 0  # built by fit: the dict batches run on the fast path


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 2, 3), nn.Linear(2, 3)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("as_dict", [False, True], ids=["tensor", "dict"])
def test_fast_step_adds_the_channels_last_hint_as_the_general_step(as_dict):
    class DictConv(ConvNet):
        def forward(self, image):
            return super().forward(image)

    model = tc.Model(DictConv() if as_dict else ConvNet(), device="cpu")
    model.compile(optimizer="adam", loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    step, _ = _fast_step(model)
    y = torch.zeros(2, dtype=torch.long)

    def batch(x):
        return ({"image": x} if as_dict else x), y

    step(batch(torch.zeros(2, 1, 8, 8)))  # the first batch: the general step builds the loss
    with pytest.raises(RuntimeError, match="channels-last") as caught:
        step(batch(torch.zeros(2, 8, 8, 1)))
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_fast_test_step_leaves_only_a_first_batch_to_the_general_step_and_puts_the_module_in_eval_mode():
    model = _model(dropout=0.5, loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    step, general = _fast_step(model, "test")
    assert isinstance(step, FastStep)
    weights = [p.clone() for p in model.parameters()]
    with torch.no_grad():
        for batch in _batches():
            model.module.train()
            logs = step(batch)
            assert not model.module.training
    assert len(general.calls) == 1 and set(logs) == {"loss", "accuracy"}
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # nothing trained


@pytest.mark.parametrize("method, mode", [("test_step", "test"), ("train_step", "train")])
def test_a_step_override_keeps_only_its_own_mode_general(method, mode):
    def override(self, data):
        return getattr(tc.Model, method)(self, data)

    model = _model(type("Custom", (tc.Model,), {method: override}), loss="mse")
    run = model._run()
    other = "train" if mode == "test" else "test"
    assert not isinstance(run.step_function(mode), FastStep)
    assert isinstance(run.step_function(other), FastStep)
