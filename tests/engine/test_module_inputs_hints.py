# SPDX-License-Identifier: Apache-2.0
"""Hints where torch's message misleads a Keras user (issue 15): channels-last images fed to a
convolution (engine/module_inputs.py), and a loss or metric class passed instead of an instance
(losses.get, metrics.get). The original exception stays attached."""

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile.engine import module_inputs


def _conv_error(conv, shape):
    try:
        conv(torch.zeros(shape))
    except RuntimeError as error:
        return error
    raise AssertionError("the convolution accepted the input")


# ---------------------------------------------------------------- channels-last inputs
@pytest.mark.parametrize(
    "conv, shape, layer, order",
    [
        (nn.Conv2d(1, 4, 3), (2, 28, 28, 1), "Conv2d wants (N, C, H, W)", "x.transpose(0, 3, 1, 2)"),
        (nn.Conv2d(3, 4, 3, groups=1), (2, 9, 9, 3), "Conv2d wants (N, C, H, W)", "x.transpose(0, 3, 1, 2)"),
        (nn.Conv1d(3, 4, 3), (2, 10, 3), "Conv1d wants (N, C, L)", "x.transpose(0, 2, 1)"),
        (nn.Conv3d(2, 4, 3), (2, 6, 6, 6, 2), "Conv3d wants (N, C, D, H, W)", "x.transpose(0, 4, 1, 2, 3)"),
        (nn.ConvTranspose2d(1, 4, 3), (2, 8, 8, 1), "Conv2d wants (N, C, H, W)", "x.transpose(0, 3, 1, 2)"),
    ],
)
def test_channels_last_hint_names_the_layout_and_the_transpose(conv, shape, layer, order):
    hint = module_inputs.channels_last_hint(_conv_error(conv, shape))
    assert "channels-last (Keras' layout" in hint and layer in hint and order in hint and "torch.permute" in hint


def test_channels_last_hint_stays_out_of_other_channel_errors():
    error = _conv_error(nn.Conv2d(3, 4, 3), (2, 28, 28, 5))  # wrong channel count in either layout
    assert module_inputs.channels_last_hint(error) is None


def test_channels_last_hint_stays_out_of_unrelated_errors():
    assert module_inputs.channels_last_hint(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) is None


def test_forward_reraises_a_channels_last_error_with_the_hint_and_the_original_attached():
    with pytest.raises(RuntimeError, match=r"images look channels-last") as info:
        module_inputs.forward(nn.Conv2d(1, 4, 3), (torch.zeros(2, 28, 28, 1),), {}, None)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert "expected input[2, 28, 28, 1] to have 1 channels" in str(info.value)  # torch's message first


def test_forward_leaves_other_runtime_errors_as_they_are():
    with pytest.raises(RuntimeError, match="cannot be multiplied") as info:
        module_inputs.forward(nn.Linear(3, 2), (torch.zeros(2, 5),), {}, None)
    assert info.value.__cause__ is None


def test_fit_on_keras_layout_images_says_to_transpose():
    model = tc.Model(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((8, 8, 8, 1), "float32"), np.zeros(8, "int64")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match=r"x\.transpose\(0, 3, 1, 2\)"):
        model.fit(x, y, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.fit(x.transpose(0, 3, 1, 2), y, verbose=0)  # the hint's fix trains


# ---------------------------------------------------------------- a class instead of an instance
def test_losses_get_refuses_a_torch_loss_class_with_did_you_mean():
    with pytest.raises(TypeError, match=r"did you mean nn\.CrossEntropyLoss\(\)\?"):
        tc.losses.get(nn.CrossEntropyLoss)


def test_losses_get_still_builds_a_tc_loss_class_as_keras_does():
    assert isinstance(tc.losses.get(tc.losses.MeanSquaredError), tc.losses.MeanSquaredError)


def test_losses_get_says_a_loss_class_needs_arguments():
    class Needy(tc.losses.Loss):
        def __init__(self, margin):
            super().__init__()

    with pytest.raises(TypeError, match=r"needs arguments to be built .*Needy\(\.\.\.\)") as info:
        tc.losses.get(Needy)
    assert isinstance(info.value.__cause__, TypeError)


def test_compile_with_a_torch_loss_class_says_did_you_mean():
    model = tc.Model(nn.Linear(3, 2), device="cpu")
    with pytest.raises(TypeError, match=r"did you mean nn\.CrossEntropyLoss\(\)\?"):
        model.compile("sgd", loss=nn.CrossEntropyLoss)
        model.fit(np.zeros((4, 3), "float32"), np.zeros(4, "int64"), verbose=0)


def test_metrics_get_refuses_a_torch_loss_class_and_shows_the_argument_order():
    with pytest.raises(TypeError, match=r"torch loss class nn\.MSELoss, not a metric.*\(y_pred, y_true\)"):
        tc.metrics.get(nn.MSELoss)


def test_metrics_get_says_a_tc_metric_class_needs_arguments():
    with pytest.raises(TypeError, match=r"MeanIoU.*num_classes.*tc\.metrics\.MeanIoU\(\.\.\.\)"):
        tc.metrics.get(tc.metrics.MeanIoU)


def test_metrics_get_says_a_torchmetrics_class_needs_arguments():
    torchmetrics = pytest.importorskip("torchmetrics")
    with pytest.raises(TypeError, match=r"did you mean torchmetrics\.Accuracy\(\.\.\.\)\?") as info:
        tc.metrics.get(torchmetrics.Accuracy)
    assert info.value.__cause__ is not None


def test_metrics_get_still_builds_a_torchmetrics_class_without_required_arguments():
    torchmetrics = pytest.importorskip("torchmetrics")
    assert tc.metrics.get(torchmetrics.MeanSquaredError).name == "mean_squared_error"


def test_metrics_get_refuses_another_class_with_did_you_mean():
    class Scorer:
        def __call__(self, y_true, y_pred):
            return (y_true - y_pred).abs()

    with pytest.raises(TypeError, match=r"did you mean Scorer\(\)\?"):
        tc.metrics.get(Scorer)
