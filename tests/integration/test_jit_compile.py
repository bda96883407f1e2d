# SPDX-License-Identifier: Apache-2.0
"""jit_compile=True: the train step runs through torch.compile, and where compiling fails fit
warns once and trains eagerly with the same results (no batch counted twice)."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

import torchcompile as tc


@pytest.fixture
def data(rng):
    x = rng.normal(size=(96, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _fit(data, jit_compile, epochs=2):
    torch.manual_seed(0)
    model = tc.Model(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)), device="cpu")
    model.compile(
        "adam", tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], jit_compile=jit_compile
    )
    return model, model.fit(*data, batch_size=32, epochs=epochs, verbose=0, shuffle=False).history


class _DynamoLikeError(Exception):
    pass


_DynamoLikeError.__module__ = "torch._dynamo.exc"


def _broken_compile(calls):
    def compile_(fn, *args, **kwargs):
        def compiled(data):
            calls.append(1)
            model, (x, y, sample_weight) = fn.__self__, tc.utils.unpack_x_y_sample_weight(data)
            # As when the backward graph fails to compile: the forward ran and counted the metrics.
            model.compute_metrics(x, y, model(x), sample_weight)
            raise _DynamoLikeError("backend compiler failed")

        return compiled

    return compile_


def test_a_failing_compile_warns_once_and_matches_eager(data, monkeypatch):
    _, eager = _fit(data, jit_compile=False)
    calls = []
    monkeypatch.setattr(torch, "compile", _broken_compile(calls))
    with pytest.warns(RuntimeWarning, match="runs eagerly.*Received: _DynamoLikeError") as record:
        model, fallback = _fit(data, jit_compile=True)
    assert len([w for w in record if "torch.compile" in str(w.message)]) == 1
    assert len(calls) == 1  # never tried again
    np.testing.assert_allclose(fallback["loss"], eager["loss"], rtol=1e-4)  # metrics restored, then eager
    assert fallback["accuracy"] == eager["accuracy"]


def test_torch_compile_itself_raising_falls_back(data, monkeypatch):
    def unavailable(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unavailable)
    with pytest.warns(RuntimeWarning, match="torch.compile could not compile Sequential"):
        _, history = _fit(data, jit_compile=True, epochs=1)
    assert np.isfinite(history["loss"]).all()


def test_a_user_error_in_a_compiled_step_is_raised_not_swallowed(data, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda fn, *a, **k: fn)  # "compiled" = eager, verified on batch 2
    model, _ = _fit(data, jit_compile=True, epochs=1)
    with pytest.raises(ValueError, match="Sparse class labels"):
        model.fit(data[0], np.zeros((96, 3), dtype="int64"), batch_size=32, verbose=0)


@pytest.mark.slow
def test_jit_compile_trains_like_eager_through_torch_compile(data):
    _, eager = _fit(data, jit_compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback allowed here
        counters.clear()
        model, compiled = _fit(data, jit_compile=True)
    assert counters["stats"]["unique_graphs"] > 0  # the steps ran through torch.compile
    np.testing.assert_allclose(compiled["loss"], eager["loss"], rtol=1e-4)
