# SPDX-License-Identifier: Apache-2.0
"""What every metric promises: reset, no host sync, device moves, tensors out, Keras names.

The catalogue below builds every class in ``tc.metrics``' id table with data it accepts.
"""

import re

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches

CATALOGUE = [
    Case("Mean", data="values"),
    Case("Sum", data="values"),
    Case("Accuracy", data="exact"),
    Case("BinaryAccuracy", data="binary"),
    Case("CategoricalAccuracy", data="onehot"),
    Case("SparseCategoricalAccuracy", data="sparse"),
    Case("TopKCategoricalAccuracy", {"k": 2}, data="onehot"),
    Case("SparseTopKCategoricalAccuracy", {"k": 2}, data="sparse"),
    Case("Precision", data="binary"),
    Case("Precision", {"thresholds": [0.0, 0.5, 1.0]}, data="binary"),
    Case("Precision", {"top_k": 2, "class_id": 1}, data="multilabel"),
    Case("Recall", data="binary"),
    Case("Recall", {"thresholds": [0.3, 0.6]}, data="multilabel"),
    Case("TruePositives", data="binary"),
    Case("FalsePositives", data="binary"),
    Case("TrueNegatives", data="binary"),
    Case("FalseNegatives", data="binary"),
    Case("AUC", data="binary"),
    Case("AUC", {"curve": "PR"}, data="binary"),
    Case("AUC", {"thresholds": [0.2, 0.7]}, data="binary"),
    Case("AUC", {"multi_label": True, "from_logits": True}, data="multilabel_logits"),
    Case("F1Score", data="multilabel"),
    Case("FBetaScore", {"average": "weighted", "beta": 2.0}, data="onehot"),
    Case("MeanSquaredError"),
    Case("RootMeanSquaredError"),
    Case("MeanAbsoluteError"),
    Case("MeanAbsolutePercentageError", data="positive"),
    Case("MeanSquaredLogarithmicError", data="positive"),
    Case("CosineSimilarity", data="multioutput"),
    Case("LogCoshError"),
    Case("R2Score", data="multioutput"),
    Case("R2Score", {"num_regressors": 2}, data="multioutput"),
    Case("BinaryCrossentropy", data="binary"),
    Case("CategoricalCrossentropy", data="onehot"),
    Case("SparseCategoricalCrossentropy", data="sparse"),
    Case("SparseCategoricalCrossentropy", {"ignore_class": 0}, data="sparse"),
    Case("KLDivergence", data="onehot"),
    Case("Poisson", data="multilabel"),
    Case("Hinge", data="hinge"),
    Case("SquaredHinge", data="hinge"),
    Case("CategoricalHinge", data="onehot"),
    Case("MeanIoU", {"num_classes": 5}, data="sparse_ids"),
    Case("MeanIoU", {"num_classes": 5, "sparse_y_pred": False, "dtype": "float32"}, data="sparse"),
    Case("IoU", {"num_classes": 5, "target_class_ids": [0, 1]}, data="sparse_ids"),
    Case("BinaryIoU", data="binary"),
    Case("OneHotIoU", {"num_classes": 5, "target_class_ids": [2]}, data="onehot"),
    Case("OneHotMeanIoU", {"num_classes": 5}, data="onehot"),
]
IDS = [c.id for c in CATALOGUE]


def _updates(case, seed=0, weighted=True):
    weighted = weighted and case.cls not in ("OneHotIoU", "OneHotMeanIoU", "MeanIoU", "IoU", "BinaryIoU")
    return batches(case.data, np.random.default_rng(seed), weighted=weighted)


def _tensors(updates):
    return [tuple(torch.as_tensor(a) for a in u) for u in updates]


def _result(metric, updates):
    for args in updates:
        metric.update_state(*args)
    return metric.result()


def test_catalogue_covers_every_registered_class():
    registered = {cls.__name__ for cls in map(tcm.METRICS.lookup, tcm.METRICS.names())}
    assert registered == {c.cls for c in CATALOGUE}


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_reset_state_equals_fresh_metric(case):
    used = case.ours()
    _result(used, _updates(case, seed=1))
    used.reset_state()
    torch.testing.assert_close(
        _result(used, _updates(case, seed=2)), _result(case.ours(), _updates(case, seed=2)), rtol=0, atol=0
    )


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_update_state_never_syncs_the_host(case, monkeypatch):
    updates = _tensors(_updates(case))
    metric = case.ours()

    def refuse(self, *args, **kwargs):
        raise AssertionError("a metric read a tensor back to the host")

    for method in ("item", "tolist", "cpu", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, method, refuse)
    result = _result(metric, updates)
    monkeypatch.undo()
    assert isinstance(result, torch.Tensor)


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_to_moves_every_state_and_returns_self(case):
    metric = case.ours()
    _result(metric, _updates(case))  # builds lazily created state (AUC multi_label, R2Score, ...)
    assert metric.to("meta") is metric
    assert metric.device.type == "meta" and all(v.device.type == "meta" for v in metric.variables)


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_updates_in_place_on_its_device(case, device):
    metric = case.ours().to(device)
    result = _result(metric, [tuple(a.to(device) for a in u) for u in _tensors(_updates(case))])
    assert result.device.type == device.type and all(v.device.type == device.type for v in metric.variables)
    torch.testing.assert_close(result.cpu(), _result(case.ours(), _updates(case)))


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_state_stays_out_of_the_autograd_graph(case):
    metric = case.ours()
    updates = [
        tuple(a.float().requires_grad_() if a.is_floating_point() else a for a in u) for u in _tensors(_updates(case))
    ]
    result = _result(metric, updates)
    assert not result.requires_grad and not any(v.requires_grad for v in metric.variables)


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_numpy_and_tensor_inputs_agree(case):
    updates = _updates(case)
    torch.testing.assert_close(_result(case.ours(), updates), _result(case.ours(), _tensors(updates)))


@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_torchmetrics_aliases_match_keras_methods(case):
    keras_style, torchmetrics_style = case.ours(), case.ours()
    for args in _updates(case, weighted=False):
        keras_style.update_state(*args)
        if case.cls in ("Mean", "Sum"):  # torchmetrics' MeanMetric.update(value, weight)
            torchmetrics_style.update(*args)
        else:
            torchmetrics_style.update(args[1], args[0])
    torch.testing.assert_close(torchmetrics_style.compute(), keras_style.result())


@pytest.mark.keras
@pytest.mark.parametrize("case", CATALOGUE, ids=IDS)
def test_metric_default_name_and_config_match_keras(case):
    ours, theirs = case.ours(), case.theirs()
    assert re.fullmatch(re.escape(ours.name) + r"(_\d+)?", theirs.name), (ours.name, theirs.name)  # Keras: auc_1
    assert type(ours).from_config(ours.get_config()).get_config() == ours.get_config()
