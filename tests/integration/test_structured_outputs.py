# SPDX-License-Identifier: Apache-2.0
"""Structured outputs through fit / evaluate / predict (issue 15): a module returning a dict, a
namedtuple or a dataclass, compiled with one loss and fitted on one `y`, trains on its output named
`logits` (and its metrics follow it), never on every output; without `logits` it is an error naming
the outputs before any weight changes; a dict loss keyed by output name stays multi-output; an output
that carries its own `loss` trains on it with compile(loss=None)."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc


class Pair(typing.NamedTuple):
    logits: torch.Tensor
    hidden: torch.Tensor


@dataclasses.dataclass
class Output:
    logits: torch.Tensor
    hidden: torch.Tensor


class Heads(nn.Module):
    """A linear classifier whose forward returns its logits in one of several structures."""

    def __init__(self, kind: str, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.linear, self.kind = nn.Linear(4, 3), kind

    def forward(self, x):
        logits = self.linear(x)
        hidden = torch.tanh(logits) * 10.0  # far from the targets: training on it would show
        if self.kind == "tensor":
            return logits
        if self.kind == "dict":
            return {"hidden": hidden, "logits": logits}
        if self.kind == "namedtuple":
            return Pair(logits, hidden)
        if self.kind == "dataclass":
            return Output(logits, hidden)
        if self.kind == "no_logits":
            return {"scores": logits, "hidden": hidden}
        if self.kind == "tuple":
            return logits, hidden
        raise ValueError(self.kind)


class CarriesLoss(nn.Module):
    """A module that computes its own loss from `labels` (the Hugging Face way), returned under "loss"."""

    def __init__(self, offset: float = 0.0):
        super().__init__()
        torch.manual_seed(0)
        self.linear, self.offset = nn.Linear(4, 3), offset

    def forward(self, features, labels=None):
        logits = self.linear(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels) + self.offset
        return out


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")


def _fit(kind, data, loss=None, metrics=("accuracy",), epochs=2):
    model = tc.Model(Heads(kind), device="cpu")
    loss = tc.losses.SparseCategoricalCrossentropy(from_logits=True) if loss is None else loss
    model.compile(tc.optimizers.SGD(learning_rate=0.1), loss=loss, metrics=list(metrics))
    history = model.fit(*data, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model, history.history


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "dataclass"])
def test_one_loss_trains_on_the_logits_output_only(kind, data):
    _, reference = _fit("tensor", data)
    _, history = _fit(kind, data)
    assert sorted(history) == ["accuracy", "loss"]  # no hidden_loss / hidden_accuracy
    for key in reference:
        np.testing.assert_allclose(history[key], reference[key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "dataclass"])
def test_evaluate_follows_the_logits_output(kind, data):
    reference, _ = _fit("tensor", data)
    model, _ = _fit(kind, data)
    np.testing.assert_allclose(model.evaluate(*data, verbose=0), reference.evaluate(*data, verbose=0), rtol=1e-6)


def test_one_loss_for_outputs_without_logits_is_refused_before_any_weight_changes(data):
    model = tc.Model(Heads("no_logits"), device="cpu")
    model.compile("sgd", loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"several outputs \['scores', 'hidden'\].*compile\(loss=\{'scores': \.\.\.\}"):
        model.fit(*data, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_flat_metrics_for_outputs_without_logits_are_refused(data):
    model = tc.Model(Heads("no_logits"), device="cpu")
    model.compile("sgd", loss={"scores": tc.losses.SparseCategoricalCrossentropy(from_logits=True)}, metrics=["acc"])
    with pytest.raises(ValueError, match=r"one list of metrics.*metrics=\{'scores': \[\.\.\.\]\}"):
        model.fit(*data, verbose=0)


def test_one_loss_and_one_target_for_a_tuple_of_outputs_is_refused(data):
    model = tc.Model(Heads("tuple"), device="cpu")
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"returns 2 outputs \(a tuple\) but `y` is one target"):
        model.fit(*data, verbose=0)


def test_a_dict_loss_keyed_by_output_name_stays_multi_output(data):
    sparse = tc.losses.SparseCategoricalCrossentropy(from_logits=True)
    _, history = _fit("no_logits", data, loss={"scores": sparse}, metrics=())
    _, reference = _fit("tensor", data, metrics=())
    assert sorted(history) == ["hidden_loss", "loss", "scores_loss"]  # Keras' per-output trackers
    np.testing.assert_allclose(history["scores_loss"], reference["loss"], rtol=1e-6)
    np.testing.assert_allclose(history["loss"], reference["loss"], rtol=1e-6)


def test_predict_returns_a_dict_of_arrays(data):
    model, _ = _fit("dict", data)
    predictions = model.predict(data[0], batch_size=16, verbose=0)
    assert list(predictions) == ["hidden", "logits"] and predictions["logits"].shape == (48, 3)
    assert isinstance(predictions["logits"], np.ndarray)


def test_predict_returns_a_namedtuple_of_arrays(data):
    model, _ = _fit("namedtuple", data)
    predictions = model.predict(data[0], batch_size=16, verbose=0)
    assert type(predictions) is Pair and predictions.logits.shape == (48, 3)


def test_predict_returns_a_dataclass_of_arrays(data):
    model, _ = _fit("dataclass", data)
    predictions = model.predict(data[0], batch_size=16, verbose=0)
    assert type(predictions) is Output and predictions.logits.shape == (48, 3)


def test_compute_loss_in_a_custom_step_takes_the_logits_output(data):
    model, _ = _fit("dict", data, epochs=1)
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    y_pred = model(x)
    loss = model.compute_loss(x, y, y_pred)
    torch.testing.assert_close(loss, nn.functional.cross_entropy(y_pred["logits"], y))


def _dict_batches(data):
    """A DataLoader of dict batches in the Hugging Face layout: the inputs and `labels`."""
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    return torch.utils.data.DataLoader([{"features": f, "labels": label} for f, label in zip(x, y)], batch_size=16)


def test_a_carried_loss_trains_with_compile_loss_none(data):
    model = tc.Model(CarriesLoss(), device="cpu")
    model.compile(tc.optimizers.SGD(learning_rate=0.5), loss=None, metrics=["accuracy"])
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    before = float(model(x, labels=y)["loss"].detach())
    history = model.fit(_dict_batches(data), epochs=5, verbose=0).history
    assert float(model(x, labels=y)["loss"].detach()) < before
    assert history["accuracy"][-1] > history["accuracy"][0]  # the metrics follow the logits output


def test_a_carried_loss_is_historys_loss(data):
    model = tc.Model(CarriesLoss(), device="cpu")
    model.compile(tc.optimizers.SGD(learning_rate=0.0), loss=None)
    history = model.fit(_dict_batches(data), epochs=1, verbose=0).history
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    assert history["loss"][0] == pytest.approx(float(model(x, labels=y)["loss"].detach()), rel=1e-6)  # equal batches


def test_a_compiled_loss_ignores_the_carried_loss(data):
    model = tc.Model(CarriesLoss(offset=100.0), device="cpu")  # the carried loss is 100 more than the compiled one
    model.compile(tc.optimizers.SGD(learning_rate=0.0), loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    logs = model.evaluate(_dict_batches(data), verbose=0, return_dict=True)
    x, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    expected = nn.functional.cross_entropy(model(x)["logits"].detach(), y)
    assert sorted(logs) == ["loss"] and logs["loss"] == pytest.approx(float(expected), rel=1e-5)
