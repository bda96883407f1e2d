# SPDX-License-Identifier: Apache-2.0
"""The Metric base, Mean/Sum (Keras' sample-weight rules), MeanMetricWrapper, ForeignMetric."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import run

TOL = {"rtol": 1e-5, "atol": 1e-6}  # float32 sums of 4 x 16 values


def _values_updates(rng, values_shape, weight_shape):
    updates = []
    for _ in range(4):
        values = rng.normal(size=values_shape).astype("float32")
        weight = None if weight_shape is None else rng.random(weight_shape).astype("float32")
        updates.append((values,) if weight is None else (values, weight))
    return updates


SHAPES = [
    ((), None),
    ((), ()),
    ((16,), None),
    ((16,), (16,)),
    ((16,), (16, 1)),
    ((16, 1), (16,)),
    ((16, 3), None),
    ((16, 3), (16,)),
    ((16, 3), (16, 3)),
    ((16, 3, 2), (16, 3)),
    ((16,), ()),
]


@pytest.mark.keras
@pytest.mark.parametrize("values_shape, weight_shape", SHAPES, ids=str)
@pytest.mark.parametrize("cls", ["Mean", "Sum"])
def test_mean_sum_match_keras(cls, values_shape, weight_shape, rng):
    from tests import keras_oracle

    updates = _values_updates(rng, values_shape, weight_shape)
    theirs = run(getattr(keras_oracle.keras.metrics, cls)(), updates)
    np.testing.assert_allclose(run(getattr(tcm, cls)(), updates), theirs, **TOL)


def test_mean_as_loss_tracker_weights_by_batch_size():
    tracker = tcm.Mean(name="loss")
    tracker.update_state(torch.tensor(2.0), sample_weight=32)
    tracker.update_state(torch.tensor(5.0), sample_weight=8)
    torch.testing.assert_close(tracker.total, torch.tensor(2.0 * 32 + 5.0 * 8))
    torch.testing.assert_close(tracker.count, torch.tensor(40.0))
    torch.testing.assert_close(tracker.result(), torch.tensor((64.0 + 40.0) / 40.0))


def test_mean_result_is_zero_before_any_update():
    torch.testing.assert_close(tcm.Mean().result(), torch.tensor(0.0))


def test_metric_reset_state_is_in_place():
    m = tcm.Mean()
    total = m.total
    m.update_state([1.0, 2.0])
    m.reset_state()
    assert m.total is total and m.total.item() == 0.0 and m.count.item() == 0.0


def test_metric_to_moves_state_and_returns_self():
    m = tcm.Mean()
    assert m.to("meta") is m
    assert all(v.device.type == "meta" for v in m.variables) and m.device.type == "meta"


@pytest.mark.gpu
def test_metric_to_cuda_updates_without_copy():
    m = tcm.Mean().to("cuda")
    m.update_state(torch.ones(4, device="cuda"))
    m.update_state(np.ones(4, dtype="float32"))
    assert m.result().device.type == "cuda" and m.result().item() == 1.0


def test_metric_accepts_numpy_lists_and_tensors_alike():
    a, b, c = tcm.Mean(), tcm.Mean(), tcm.Mean()
    a.update_state(np.array([1.0, 2.0]))
    b.update_state([1.0, 2.0])
    c.update_state(torch.tensor([1.0, 2.0]))
    assert a.result().item() == b.result().item() == c.result().item() == 1.5


def test_metric_update_takes_torchmetrics_argument_order():
    keras_style, torchmetrics_style = tcm.BinaryAccuracy(), tcm.BinaryAccuracy()
    y_true, y_pred = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.9, 0.8, 0.1])
    keras_style.update_state(y_true, y_pred)
    torchmetrics_style.update(y_pred, y_true)
    torch.testing.assert_close(torchmetrics_style.compute(), keras_style.result())
    torchmetrics_style.reset()
    torch.testing.assert_close(torchmetrics_style.compute(), torch.tensor(0.0))


def test_metric_call_updates_and_returns_result():
    m = tcm.Sum()
    m([1.0, 2.0])
    torch.testing.assert_close(m([3.0]), torch.tensor(6.0))


@pytest.mark.parametrize(
    "cls, name", [(tcm.Mean, "mean"), (tcm.Sum, "sum"), (tcm.SparseCategoricalAccuracy, "sparse_categorical_accuracy")]
)
def test_metric_name_defaults_to_keras_name(cls, name):
    assert cls().name == name


def test_metric_name_defaults_to_snake_case_of_subclass():
    class MyFancyMetric(tcm.Metric):
        pass

    assert MyFancyMetric().name == "my_fancy_metric"


def test_metric_dtype_sets_state_and_result_dtype():
    m = tcm.Mean(dtype="float64")
    m.update_state([1.0, 2.0])
    assert m.dtype is torch.float64 and m.result().dtype == torch.float64


def test_metric_dtype_rejects_integers_and_names_it():
    with pytest.raises(ValueError, match="Received: dtype='int32'"):
        tcm.Mean(dtype="int32")


def test_metric_config_round_trips():
    m = tcm.BinaryAccuracy(name="acc", threshold=0.7, dtype="float64")
    clone = tcm.BinaryAccuracy.from_config(m.get_config())
    assert clone.get_config() == m.get_config() == {"name": "acc", "dtype": "float64", "threshold": 0.7}


def test_mean_metric_wrapper_passes_fn_kwargs():
    def scaled_error(y_true, y_pred, scale):
        return scale * (y_true - y_pred).abs()

    m = tcm.MeanMetricWrapper(scaled_error, name="scaled", scale=2.0)
    m.update_state([0.0, 0.0], [1.0, 3.0], sample_weight=[1.0, 0.0])
    assert m.name == "scaled" and m.result().item() == 2.0


class FakeTorchmetric:
    """The torchmetrics protocol and nothing else."""

    def __init__(self):
        self.calls = []

    def update(self, preds, target):
        self.calls.append((preds, target))

    def compute(self):
        return 0.5

    def reset(self):
        self.calls.clear()


def test_foreign_metric_calls_update_in_torchmetrics_order():
    fake = FakeTorchmetric()
    m = tcm.ForeignMetric(fake)
    m.update_state(torch.tensor([1.0]), torch.tensor([0.25]))
    preds, target = fake.calls[0]
    assert preds.item() == 0.25 and target.item() == 1.0
    assert m.name == "fake_torchmetric" and m.result().item() == 0.5
    m.reset_state()
    assert fake.calls == []


def test_foreign_metric_converts_numpy_inputs():
    fake = FakeTorchmetric()
    tcm.ForeignMetric(fake).update_state(np.array([1.0]), np.array([0.0]))
    assert all(isinstance(x, torch.Tensor) for x in fake.calls[0])


def test_foreign_metric_refuses_sample_weight():
    with pytest.raises(ValueError, match="sample_weight"):
        tcm.ForeignMetric(FakeTorchmetric()).update_state([1.0], [1.0], sample_weight=[1.0])


def test_foreign_metric_refuses_objects_without_protocol():
    with pytest.raises(TypeError, match="lacks update, compute, reset"):
        tcm.ForeignMetric(object())


def test_foreign_metric_wraps_torchmetrics_and_moves_it():
    torchmetrics = pytest.importorskip("torchmetrics")
    inner = torchmetrics.classification.MulticlassAccuracy(num_classes=3)
    m = tcm.ForeignMetric(inner)
    assert m.to("cpu") is m and m.obj.device.type == "cpu" and m.higher_is_better is True
