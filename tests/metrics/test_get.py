# SPDX-License-Identifier: Apache-2.0
"""``tc.metrics.get`` on every identifier kind, and the id table against Keras 3's."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm

NEEDS_ARGS = {"MeanIoU", "IoU", "OneHotIoU", "OneHotMeanIoU"}  # Keras' get cannot build them either


def test_get_none_is_none():
    assert tcm.get(None) is None


def test_get_metric_instance_is_returned_as_is():
    metric = tcm.Precision(thresholds=0.3)
    assert tcm.get(metric) is metric


def test_get_metric_class_is_instantiated():
    assert isinstance(tcm.get(tcm.AUC), tcm.AUC)


@pytest.mark.parametrize(
    "identifier, cls, name",
    [
        ("accuracy", tcm.Accuracy, "accuracy"),
        ("mse", tcm.MeanSquaredError, "mean_squared_error"),
        ("MSE", tcm.MeanSquaredError, "mean_squared_error"),
        ("mae", tcm.MeanAbsoluteError, "mean_absolute_error"),
        ("mape", tcm.MeanAbsolutePercentageError, "mean_absolute_percentage_error"),
        ("msle", tcm.MeanSquaredLogarithmicError, "mean_squared_logarithmic_error"),
        ("bce", tcm.BinaryCrossentropy, "binary_crossentropy"),
        ("binary_accuracy", tcm.BinaryAccuracy, "binary_accuracy"),
        ("SparseCategoricalAccuracy", tcm.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
        ("f_beta_score", tcm.FBetaScore, "fbeta_score"),
        ("log_cosh_error", tcm.LogCoshError, "logcosh"),
        ("auc", tcm.AUC, "auc"),
        ("r2_score", tcm.R2Score, "r2_score"),
    ],
)
def test_get_string_id_gives_keras_class_and_name(identifier, cls, name):
    metric = tcm.get(identifier)
    assert type(metric) is cls and metric.name == name


def test_get_string_ids_are_case_sensitive_as_keras():
    with pytest.raises(ValueError, match="Unknown metric 'Mse'"):
        tcm.get("Mse")


def test_get_unknown_id_lists_close_matches():
    with pytest.raises(ValueError, match=r"Did you mean 'binary_accuracy'.*Received: metric='binary_acuracy'"):
        tcm.get("binary_acuracy")


def test_get_config_dict_uses_from_config():
    metric = tcm.get({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7, "name": "acc"}})
    assert isinstance(metric, tcm.BinaryAccuracy) and metric.get_config()["threshold"] == 0.7 and metric.name == "acc"


def test_get_plain_function_is_averaged_and_named_after_it():
    def abs_error(y_true, y_pred):
        return (y_true - y_pred).abs()

    metric = tcm.get(abs_error)
    metric.update_state(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0]))
    assert isinstance(metric, tcm.MeanMetricWrapper) and metric.name == "abs_error"
    assert metric.result().item() == 2.0


def test_get_refuses_other_types_and_names_them():
    with pytest.raises(TypeError, match="got a int. Received: identifier=3"):
        tcm.get(3)


def test_get_wraps_torchmetrics_multiclass_accuracy_and_gives_its_value():
    torchmetrics = pytest.importorskip("torchmetrics")
    reference = torchmetrics.classification.MulticlassAccuracy(num_classes=4)
    metric = tcm.get(torchmetrics.classification.MulticlassAccuracy(num_classes=4))
    assert isinstance(metric, tcm.ForeignMetric) and metric.name == "multiclass_accuracy"
    rng = np.random.default_rng(0)
    for _ in range(4):
        y_true, y_pred = torch.as_tensor(rng.integers(0, 4, 16)), torch.as_tensor(rng.random((16, 4)))
        metric.update_state(y_true, y_pred)  # Keras order in, torchmetrics order to the object
        reference.update(y_pred, y_true)
    torch.testing.assert_close(metric.result(), reference.compute())
    metric.reset_state()
    assert metric.obj.tp.sum().item() == 0


def test_get_instantiates_foreign_metric_classes():
    class Counter:
        def update(self, preds, target):
            pass

        def compute(self):
            return torch.tensor(1.0)

        def reset(self):
            pass

    assert isinstance(tcm.get(Counter), tcm.ForeignMetric)


@pytest.mark.parametrize("identifier", tcm.METRICS.names())
def test_get_every_id_builds_its_metric(identifier):
    cls = tcm.METRICS.lookup(identifier)
    if cls.__name__ in NEEDS_ARGS:  # as in Keras, they cannot be built from a string alone
        with pytest.raises(TypeError, match=rf"build it as tc.metrics.{cls.__name__}\(...\)"):
            tcm.get(identifier)
    else:
        assert type(tcm.get(identifier)) is cls


@pytest.mark.keras
def test_get_ids_are_keras_ids_for_the_same_classes():
    from keras.src.metrics import ALL_OBJECTS_DICT

    from tests.keras_oracle import keras  # noqa: F401

    ours = {name: tcm.METRICS.lookup(name).__name__ for name in tcm.METRICS.names()}
    assert all(ALL_OBJECTS_DICT[name].__name__ == cls for name, cls in ours.items())
    implemented = set(ours.values())
    assert {k for k, v in ALL_OBJECTS_DICT.items() if v.__name__ in implemented} == set(ours)


def test_get_wraps_a_torch_loss_instance_in_torch_argument_order_averaged_over_samples():
    y_pred, y_true = torch.randn(6, 3), torch.randint(0, 3, (6,))
    metric = tcm.get(torch.nn.CrossEntropyLoss())
    metric.update_state(y_true[:4], y_pred[:4])
    metric.update_state(y_true[4:], y_pred[4:])
    assert metric.name == "cross_entropy_loss"
    torch.testing.assert_close(metric.result(), torch.nn.functional.cross_entropy(y_pred, y_true))
