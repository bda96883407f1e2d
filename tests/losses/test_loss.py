# SPDX-License-Identifier: Apache-2.0
"""The Loss base class: conversion, reductions, sample weights, subclassing (float32: rtol=1e-5, atol=1e-6)."""

import numpy as np
import pytest
import torch

import torchcompile.losses as losses
from tests.losses.cases import TOL, inputs


class AbsoluteError(losses.Loss):
    def call(self, y_true, y_pred):
        return torch.abs(y_true - y_pred)


def test_loss_subclass_implements_call_and_gets_reductions():
    loss = AbsoluteError(reduction="sum")
    assert loss.name == "absolute_error"
    torch.testing.assert_close(loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])), torch.tensor(3.0))


def test_loss_unknown_reduction_names_the_choices():
    with pytest.raises(ValueError, match="Received: reduction='avg'"):
        losses.MeanSquaredError(reduction="avg")


def test_loss_converts_numpy_float64_to_float32(rng):
    y_true, y_pred = (a.astype(np.float64) for a in inputs("regression", rng))
    assert losses.MeanSquaredError()(y_true, y_pred).dtype == torch.float32


def test_loss_dtype_sets_the_compute_dtype(rng):
    y_true, y_pred = inputs("regression", rng)
    assert losses.MeanSquaredError(dtype="float64")(y_true, y_pred).dtype == torch.float64


def test_loss_refuses_an_integer_dtype():
    with pytest.raises(ValueError, match="Received: dtype='int32'"):
        losses.MeanSquaredError(dtype="int32")


def test_loss_gradient_reaches_predictions(rng):
    y_true, y_pred = inputs("categorical_logits", rng)
    y_pred = torch.from_numpy(y_pred).requires_grad_()
    losses.CategoricalCrossentropy(from_logits=True)(y_true, y_pred).backward()
    assert y_pred.grad is not None and torch.isfinite(y_pred.grad).all()


def test_loss_none_reduction_returns_per_sample_values(rng):
    y_true, y_pred = inputs("regression", rng)
    assert losses.Huber(reduction=None)(y_true, y_pred).shape == (8,)


def test_loss_sample_weight_of_the_wrong_length_raises(rng):
    y_true, y_pred = inputs("regression", rng)
    with pytest.raises(ValueError, match=r"sample_weight\.shape=\(5,\)"):
        losses.MeanSquaredError()(y_true, y_pred, sample_weight=np.ones(5, np.float32))


def test_loss_per_sample_weights_spread_over_sequence_steps(rng):
    y_pred = torch.from_numpy(rng.random((4, 5, 3), dtype=np.float32))
    y_true = torch.from_numpy(rng.integers(0, 3, (4, 5)))
    sw = torch.rand(4)
    loss = losses.SparseCategoricalCrossentropy(reduction="sum")
    torch.testing.assert_close(
        loss(y_true, y_pred, sample_weight=sw), loss(y_true, y_pred, sample_weight=sw[:, None].expand(4, 5)), **TOL
    )


def test_loss_mean_with_sample_weight_of_zeros_is_zero_with_finite_gradient(rng):
    y_true, y_pred = inputs("regression", rng)
    y_pred = torch.from_numpy(y_pred).requires_grad_()
    value = losses.MeanSquaredError(reduction="mean_with_sample_weight")(y_true, y_pred, sample_weight=np.zeros(8))
    value.backward()
    assert float(value.detach()) == 0.0 and torch.isfinite(y_pred.grad).all()


def test_loss_empty_batch_gives_zero():
    assert float(losses.MeanSquaredError()(torch.zeros(0, 3), torch.zeros(0, 3))) == 0.0


@pytest.mark.keras
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_binary_crossentropy_on_1d_inputs_matches_keras(weighted, rng):
    from tests import keras_oracle

    y_true, y_pred = (a[:, 0] for a in inputs("binary", rng))
    sw = rng.random(8, dtype=np.float32) if weighted else None
    expected = keras_oracle.loss("BinaryCrossentropy", y_true, y_pred, sample_weight=sw, reduction="sum")
    ours = losses.BinaryCrossentropy(reduction="sum")(y_true, y_pred, sample_weight=sw)
    torch.testing.assert_close(ours, torch.as_tensor(expected), **TOL)


def test_loss_function_wrapper_passes_keyword_arguments(rng):
    y_true, y_pred = inputs("regression", rng)
    wrapper = losses.LossFunctionWrapper(losses.huber, delta=0.3)
    torch.testing.assert_close(wrapper(y_true, y_pred), losses.Huber(delta=0.3)(y_true, y_pred))


def test_loss_function_wrapper_squeezes_for_user_functions():
    seen = []
    wrapper = losses.LossFunctionWrapper(lambda y_true, y_pred: seen.append(y_true.shape) or (y_true - y_pred)[:, 0])
    wrapper(torch.zeros(4), torch.zeros(4, 1))
    assert seen == [(4, 1)]


def test_loss_function_wrapper_over_probabilities_suggests_the_class():
    assert losses.get("binary_crossentropy").logits_fix == "tc.losses.BinaryCrossentropy(from_logits=True)"


def test_loss_follows_y_pred_device(device):
    y_pred = torch.rand(4, 3, device=device)
    assert losses.MeanSquaredError()(np.zeros((4, 3), np.float32), y_pred).device == y_pred.device
