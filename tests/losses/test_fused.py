# SPDX-License-Identifier: Apache-2.0
"""The fused crossentropy path (issue 19): ``SparseCategoricalCrossentropy`` / ``CategoricalCrossentropy``
from logits, reduced by ``sum_over_batch_size`` without sample weights, is one ``F.cross_entropy`` call.
Same values as Keras (float32: rtol=1e-5, atol=1e-6) and the same gradients as the general path; every
other input takes the general path."""

import numpy as np
import pytest
import torch

import torchcompile.losses as losses
from tests.losses.cases import TOL, inputs


def keras_value(name, y_true, y_pred, **kwargs):
    from tests import keras_oracle

    return torch.as_tensor(keras_oracle.loss(name, y_true, y_pred, **kwargs))


def general(loss, y_true, y_pred):
    """The general path's value: per-sample values, then their mean."""
    return losses.Loss.__call__(loss, y_true, y_pred)


def sparse_inputs(rng, n=8, c=4, shape=None):
    y_true, y_pred = inputs("sparse_logits", rng, n, c)
    labels = torch.from_numpy(y_true).long()
    return labels.reshape(shape) if shape else labels, torch.from_numpy(y_pred).requires_grad_()


@pytest.mark.keras
@pytest.mark.parametrize("label_shape", [None, (-1, 1)])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean"])
@pytest.mark.parametrize("n,c", [(8, 4), (512, 10)])
def test_fused_sparse_crossentropy_matches_keras(label_shape, reduction, n, c, rng):
    y_true, y_pred = sparse_inputs(rng, n, c, label_shape)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    value = loss(y_true, y_pred)
    assert type(value.grad_fn).__name__ == "NllLossBackward0"  # one call, no separate mean
    expected = keras_value(
        "SparseCategoricalCrossentropy", y_true.numpy(), y_pred.detach().numpy(), from_logits=True, reduction=reduction
    )
    torch.testing.assert_close(value.detach(), expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("n,c", [(8, 4), (512, 10)])
def test_fused_categorical_crossentropy_matches_keras(label_smoothing, n, c, rng):
    y_true, y_pred = inputs("categorical_logits", rng, n, c)
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    value = loss(torch.from_numpy(y_true), torch.from_numpy(y_pred).requires_grad_())
    assert "Mean" not in type(value.grad_fn).__name__
    expected = keras_value("CategoricalCrossentropy", y_true, y_pred, from_logits=True, label_smoothing=label_smoothing)
    torch.testing.assert_close(value.detach(), expected, **TOL)


@pytest.mark.parametrize("kind", ["sparse", "categorical", "categorical_smoothed"])
def test_fused_path_gives_the_general_paths_value_and_gradient(kind, rng):
    if kind == "sparse":
        loss = losses.SparseCategoricalCrossentropy(from_logits=True)
        y_true, y_pred = sparse_inputs(rng, 64, 10)
    else:
        loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2 if kind.endswith("ed") else 0.0)
        y_true, y_pred = (torch.from_numpy(a) for a in inputs("categorical_logits", rng, 64, 10))
        y_pred.requires_grad_()
    value = loss(y_true, y_pred)
    (grad,) = torch.autograd.grad(value, y_pred)
    reference = general(loss, y_true, y_pred)
    assert "Mean" in type(reference.grad_fn).__name__
    (reference_grad,) = torch.autograd.grad(reference, y_pred)
    torch.testing.assert_close(value, reference, **TOL)
    torch.testing.assert_close(grad, reference_grad, **TOL)


def _general_only(rng: np.random.Generator) -> list:
    """Inputs and losses the fused call does not take: each must give the general path's value."""
    y_true, y_pred = sparse_inputs(rng)
    sparse = losses.SparseCategoricalCrossentropy(from_logits=True)
    weights = torch.from_numpy(rng.random(8, dtype=np.float32))
    return [
        ("sample weight", sparse, (y_true, y_pred, weights)),
        ("sum reduction", losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"), (y_true, y_pred)),
        ("ignore_class", losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=1), (y_true, y_pred)),
        ("probabilities", losses.SparseCategoricalCrossentropy(), (y_true, y_pred.softmax(-1))),
        ("float labels", sparse, (y_true.float(), y_pred)),
        ("int32 labels", sparse, (y_true.int(), y_pred)),
        ("numpy labels", sparse, (y_true.numpy(), y_pred)),
        ("sequences", sparse, (y_true.reshape(2, 4), y_pred.reshape(2, 4, 4))),
        ("float64 logits", sparse, (y_true, y_pred.double())),
        ("class axis 0", losses.CategoricalCrossentropy(from_logits=True, axis=0), (y_true, y_pred)),
    ]


@pytest.mark.parametrize("index", range(10))
def test_other_inputs_take_the_general_path(index, rng):
    what, loss, args = _general_only(rng)[index]
    if what == "class axis 0":
        args = (torch.nn.functional.one_hot(args[0], 4).float(), args[1])
    value = loss(*args)
    assert type(value.grad_fn).__name__ != "NllLossBackward0", what
    assert torch.isfinite(value), what


def test_a_subclass_that_changes_call_is_not_fused(rng):
    class Halved(losses.SparseCategoricalCrossentropy):
        def call(self, y_true, y_pred):
            return super().call(y_true, y_pred) / 2

    y_true, y_pred = sparse_inputs(rng)
    full = losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred)
    torch.testing.assert_close(Halved(from_logits=True)(y_true, y_pred), full / 2)


def test_labels_out_of_range_still_raise(rng):
    y_true, y_pred = sparse_inputs(rng)
    y_true[0] = 7
    with pytest.raises((IndexError, RuntimeError)):
        losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred)
