# SPDX-License-Identifier: Apache-2.0
"""TorchLoss: torch.nn loss modules called (y_pred, y_true), shapes matched, never broadcast."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchcompile.losses as losses


def test_torch_loss_mse_n_against_n_by_1_equals_matching_shapes():
    y_true, y_pred = torch.randn(8), torch.randn(8, 1)
    loss = losses.get(nn.MSELoss())
    torch.testing.assert_close(loss(y_true, y_pred), F.mse_loss(y_pred, y_true[:, None]))


def test_torch_loss_mse_n_by_1_against_n_equals_matching_shapes():
    y_true, y_pred = torch.randn(8, 1), torch.randn(8)
    torch.testing.assert_close(losses.get(nn.MSELoss())(y_true, y_pred), F.mse_loss(y_pred, y_true[:, 0]))


def test_torch_loss_refuses_irreconcilable_shapes():
    with pytest.raises(ValueError, match=r"y_true\.shape=\(8, 3\), y_pred\.shape=\(8, 4\)"):
        losses.get(nn.L1Loss())(torch.randn(8, 3), torch.randn(8, 4))


def test_torch_loss_calls_the_module_in_torch_order():
    y_true, y_pred = torch.rand(8, 1), torch.rand(8, 1)
    torch.testing.assert_close(losses.get(nn.BCELoss())(y_true, y_pred), F.binary_cross_entropy(y_pred, y_true))


@pytest.mark.parametrize("shape", [(8,), (8, 1)])
def test_torch_loss_cross_entropy_takes_integer_targets(shape):
    y_true, y_pred = torch.randint(0, 5, (8,)), torch.randn(8, 5)
    expected = F.cross_entropy(y_pred, y_true)
    torch.testing.assert_close(losses.get(nn.CrossEntropyLoss())(y_true.reshape(shape), y_pred), expected)


def test_torch_loss_cross_entropy_takes_integral_float_targets():
    y_true, y_pred = torch.randint(0, 5, (8,)), torch.randn(8, 5)
    torch.testing.assert_close(
        losses.get(nn.CrossEntropyLoss())(y_true.float(), y_pred), F.cross_entropy(y_pred, y_true)
    )


def test_torch_loss_cross_entropy_takes_class_probabilities():
    y_true, y_pred = torch.softmax(torch.randn(8, 5), -1), torch.randn(8, 5)
    torch.testing.assert_close(losses.get(nn.CrossEntropyLoss())(y_true, y_pred), F.cross_entropy(y_pred, y_true))


def test_torch_loss_cross_entropy_keeps_ignore_index():
    y_true, y_pred = torch.tensor([0, -100, 2, 1]), torch.randn(4, 3)
    torch.testing.assert_close(losses.get(nn.CrossEntropyLoss())(y_true, y_pred), F.cross_entropy(y_pred, y_true))


def test_torch_loss_cross_entropy_on_sequences_uses_dim_1_for_classes():
    y_true, y_pred = torch.randint(0, 5, (2, 7)), torch.randn(2, 5, 7)
    torch.testing.assert_close(losses.get(nn.CrossEntropyLoss())(y_true, y_pred), F.cross_entropy(y_pred, y_true))


def test_torch_loss_nll_takes_integer_targets():
    y_true, y_pred = torch.randint(0, 5, (8,)), torch.log_softmax(torch.randn(8, 5), -1)
    torch.testing.assert_close(losses.get(nn.NLLLoss())(y_true, y_pred), F.nll_loss(y_pred, y_true))


def test_torch_loss_sample_weight_weights_per_sample_losses():
    y_true, y_pred, sw = torch.randint(0, 5, (8,)), torch.randn(8, 5), torch.rand(8)
    expected = (F.cross_entropy(y_pred, y_true, reduction="none") * sw).mean()
    torch.testing.assert_close(losses.get(nn.CrossEntropyLoss())(y_true, y_pred, sample_weight=sw), expected)


def test_torch_loss_sample_weight_averages_each_samples_elements():
    y_true, y_pred, sw = torch.randn(8, 3), torch.randn(8, 3), torch.rand(8)
    expected = ((y_pred - y_true).square().mean(1) * sw).mean()
    torch.testing.assert_close(losses.get(nn.MSELoss())(y_true, y_pred, sample_weight=sw), expected)


def test_torch_loss_sample_weight_leaves_the_module_unchanged():
    module = nn.MSELoss()
    losses.get(module)(torch.randn(4), torch.randn(4), sample_weight=torch.rand(4))
    assert module.reduction == "mean"


def test_torch_loss_module_reducing_none_gets_keras_reduction():
    y_true, y_pred = torch.randn(8, 3), torch.randn(8, 3)
    torch.testing.assert_close(losses.get(nn.MSELoss(reduction="none"))(y_true, y_pred), F.mse_loss(y_pred, y_true))


@pytest.mark.parametrize(
    "module,expected",
    [(nn.CrossEntropyLoss(), True), (nn.NLLLoss(), True), (nn.MSELoss(), False), (nn.BCEWithLogitsLoss(), False)],
    ids=repr,
)
def test_torch_loss_sparse_labels_for_class_index_losses(module, expected):
    assert losses.get(module).sparse_labels is expected


@pytest.mark.parametrize(
    "module,expected", [(nn.BCELoss(), True), (nn.BCEWithLogitsLoss(), False), (nn.CrossEntropyLoss(), False)], ids=repr
)
def test_torch_loss_expects_probabilities_only_for_bce(module, expected):
    assert losses.get(module).expects_probabilities is expected


def test_torch_loss_is_named_after_the_module():
    assert losses.get(nn.CrossEntropyLoss()).name == "cross_entropy_loss"


def test_torch_loss_config_round_trips_the_module_class():
    loss = losses.get(nn.SmoothL1Loss())
    clone = losses.get({"class_name": "TorchLoss", "config": loss.get_config()})
    assert isinstance(clone.module, nn.SmoothL1Loss) and clone.name == loss.name
