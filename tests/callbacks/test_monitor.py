# SPDX-License-Identifier: Apache-2.0
import operator
import types

import pytest

import torchcompile as tc
from torchcompile.callbacks import MonitorCallback


@pytest.mark.parametrize(
    "mode, monitor, expected",
    [
        ("max", "val_mse", operator.gt),
        ("min", "val_loss", operator.lt),
        ("auto", "val_mse", operator.lt),
        ("auto", "loss", operator.lt),
        ("auto", "acc", operator.gt),
        ("auto", "val_accuracy", operator.gt),
        ("auto", "hinge", operator.lt),
        ("auto", "f1_score", operator.gt),
        ("auto", "val_auc", operator.gt),
        ("auto", "out_1_loss", operator.lt),
        ("auto", "mean_absolute_error", operator.lt),
    ],
)
def test_monitor_callback_picks_direction_as_keras(mode, monitor, expected, fake_model):
    callback = MonitorCallback(monitor, mode)
    callback.set_model(fake_model)
    callback._set_monitor_op()
    assert callback.monitor_op is expected


def test_monitor_callback_reads_higher_is_better_from_the_metric(fake_model):
    fake_model.metrics = [
        types.SimpleNamespace(name="score", higher_is_better=True),
        types.SimpleNamespace(name="accuracy_gap", higher_is_better=False),
    ]
    for monitor, expected in (("val_score", operator.gt), ("accuracy_gap", operator.lt)):
        callback = MonitorCallback(monitor)
        callback.set_model(fake_model)
        callback._set_monitor_op()
        assert callback.monitor_op is expected


def test_monitor_callback_reads_direction_of_real_compiled_metrics(data):
    from tests.callbacks.conftest import make_model

    model = make_model(metrics=[tc.metrics.MeanSquaredError(name="custom_name")])
    model.fit(data[0], data[1], epochs=1, verbose=0)
    callback = MonitorCallback("custom_name")
    callback.set_model(model)
    callback._set_monitor_op()
    assert callback.monitor_op is operator.lt


def test_monitor_callback_unknown_metric_in_auto_mode_raises(fake_model):
    callback = MonitorCallback("unknown")
    callback.set_model(fake_model)
    with pytest.raises(ValueError, match="mode='max'"):
        callback._set_monitor_op()


def test_monitor_callback_min_delta_as_keras():
    callback = MonitorCallback(mode="max", min_delta=0.5)
    callback._set_monitor_op()
    assert callback._is_improvement(0.75, 0)
    assert callback._is_improvement(0.5, None)
    assert not callback._is_improvement(0.5, 0)
    assert not callback._is_improvement(0.2, 0.5)


def test_monitor_callback_unknown_mode_warns_and_uses_auto():
    with pytest.warns(UserWarning, match="unknown"):
        callback = MonitorCallback("loss", mode="sideways")
    assert callback.mode == "auto"


NAN = float("nan")


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("reference", [None, 0.5, NAN])
def test_monitor_callback_nan_is_never_an_improvement(mode, reference):
    callback = MonitorCallback("val_loss", mode)
    assert not callback._is_improvement(NAN, reference)


@pytest.mark.parametrize("mode, value", [("min", 1e9), ("max", -1e9)])
def test_monitor_callback_any_value_beats_a_nan_reference(mode, value):
    callback = MonitorCallback("val_loss", mode, min_delta=0.1)
    assert callback._is_improvement(value, NAN)
