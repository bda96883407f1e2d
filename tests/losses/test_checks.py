# SPDX-License-Identifier: Apache-2.0
"""Shape rule, logits check and sparse label check (losses/checks.py)."""

import pytest
import torch
from torch import nn

import torchcompile.losses as losses
from torchcompile.losses import checks


@pytest.mark.parametrize(
    "true_shape,pred_shape,expected",
    [
        ((8,), (8, 1), ((8, 1), (8, 1))),
        ((8, 1), (8,), ((8, 1), (8, 1))),
        ((8, 5, 1), (8, 5), ((8, 5), (8, 5))),
        ((8, 3), (8, 3), ((8, 3), (8, 3))),
        ((8, 1), (8, 3), ((8, 1), (8, 3))),
    ],
)
def test_squeeze_or_expand_matches_keras_rule(true_shape, pred_shape, expected):
    y_true, y_pred = checks.squeeze_or_expand(torch.zeros(true_shape), torch.zeros(pred_shape))
    assert (tuple(y_true.shape), tuple(y_pred.shape)) == expected


@pytest.mark.parametrize("true_shape,pred_shape", [((8, 3), (8, 4)), ((8,), (5,)), ((8,), (8, 3)), ((8, 3), (8, 1))])
def test_squeeze_or_expand_refuses_a_broadcast(true_shape, pred_shape):
    with pytest.raises(
        ValueError,
        match=rf"y_true\.shape={true_shape}.*y_pred\.shape={pred_shape}".replace("(", r"\(").replace(")", r"\)"),
    ):
        checks.squeeze_or_expand(torch.zeros(true_shape), torch.zeros(pred_shape))


def test_squeeze_or_expand_sparse_drops_a_trailing_1():
    assert checks.squeeze_or_expand_sparse(torch.zeros(8, 1), torch.zeros(8, 3)).shape == (8,)


def test_check_probabilities_names_loss_range_and_fix():
    logits = torch.tensor([[-3.2], [4.1]])
    with pytest.raises(ValueError) as info:
        checks.check_probabilities(losses.BinaryCrossentropy(), logits)
    message = str(info.value)
    assert message.startswith(
        "BinaryCrossentropy expects probabilities in [0, 1], but the first batch of "
        "predictions spans [-3.2, 4.1], which looks like logits."
    )
    assert "BinaryCrossentropy(from_logits=True)" in message and "nn.Sigmoid()" in message
    assert "Received: y_pred.min()=-3.2, y_pred.max()=4.1" in message


def test_check_probabilities_suggests_softmax_for_categorical_losses():
    with pytest.raises(ValueError, match=r"nn\.Softmax\(dim=-1\)"):
        checks.check_probabilities(losses.get("categorical_crossentropy"), torch.tensor([[2.0, -1.0]]))


def test_check_probabilities_suggests_bce_with_logits_for_torch_bce():
    with pytest.raises(ValueError, match=r"nn\.BCELoss expects.*nn\.BCEWithLogitsLoss\(\)"):
        checks.check_probabilities(losses.get(nn.BCELoss()), torch.tensor([[2.0]]))


@pytest.mark.parametrize(
    "loss",
    [
        losses.BinaryCrossentropy(from_logits=True),
        losses.MeanSquaredError(),
        losses.SparseCategoricalCrossentropy(from_logits=True),
    ],
    ids=repr,
)
def test_check_probabilities_ignores_losses_taking_logits(loss):
    checks.check_probabilities(loss, torch.tensor([[-3.0, 5.0]]))


def test_check_probabilities_accepts_probabilities():
    checks.check_probabilities(losses.CategoricalCrossentropy(), torch.tensor([[0.0, 1.0], [0.3, 0.7]]))


def test_check_sparse_labels_names_range_and_num_classes():
    with pytest.raises(ValueError) as info:
        checks.check_sparse_labels(losses.SparseCategoricalCrossentropy(), torch.tensor([0, 3, 10]), 10)
    message = str(info.value)
    assert "expects class labels in [0, 10), but the labels span [0, 10]" in message
    assert message.endswith("Received: y_true.min()=0, y_true.max()=10, num_classes=10")


def test_check_sparse_labels_refuses_negative_labels():
    with pytest.raises(ValueError, match=r"span \[-1, 2\]"):
        checks.check_sparse_labels(losses.get("sparse_categorical_crossentropy"), torch.tensor([-1, 2]), 3)


def test_check_sparse_labels_refuses_non_integral_floats():
    with pytest.raises(ValueError, match="non-integral"):
        checks.check_sparse_labels(losses.SparseCategoricalCrossentropy(), torch.tensor([0.0, 1.5]), 3)


def test_check_sparse_labels_accepts_integral_floats():
    checks.check_sparse_labels(losses.SparseCategoricalCrossentropy(), torch.tensor([0.0, 2.0]), 3)


def test_check_sparse_labels_skips_ignore_class():
    checks.check_sparse_labels(losses.SparseCategoricalCrossentropy(ignore_class=-1), torch.tensor([-1, 2]), 3)


def test_check_sparse_labels_skips_torch_ignore_index():
    checks.check_sparse_labels(losses.get(nn.CrossEntropyLoss()), torch.tensor([-100, 2]), 3)


def test_check_sparse_labels_skips_class_probabilities_for_torch_cross_entropy():
    checks.check_sparse_labels(losses.get(nn.CrossEntropyLoss()), torch.tensor([[0.2, 0.3, 0.5]]), 3)


def test_check_sparse_labels_ignores_dense_losses():
    checks.check_sparse_labels(losses.CategoricalCrossentropy(), torch.tensor([[0.0, 7.0]]), 2)
