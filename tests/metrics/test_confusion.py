# SPDX-License-Identifier: Apache-2.0
"""Precision, Recall, AUC and the confusion counts against Keras 3 after NUM_BATCHES updates."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches, keras_result, run
from torchcompile.metrics.confusion import confusion_counts

CASES = [
    Case("Precision", data="binary"),
    Case("Precision", {"thresholds": [0.2, 0.5, 0.7]}, data="binary"),
    Case("Precision", {"thresholds": [0.0, 0.5, 1.0]}, data="multilabel"),  # bucketed path
    Case("Precision", {"top_k": 2}, data="multilabel"),
    Case("Precision", {"class_id": 1}, data="multilabel"),
    Case("Precision", {"class_id": 2, "top_k": 1, "thresholds": [0.1, 0.4]}, data="multilabel"),
    Case("Recall", data="binary"),
    Case("Recall", {"thresholds": [0.3, 0.6]}, data="multilabel"),
    Case("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, data="binary"),
    Case("Recall", {"top_k": 3}, data="multilabel"),
    Case("Recall", {"class_id": 0}, data="multilabel"),
    Case("TruePositives", data="binary"),
    Case("FalsePositives", {"thresholds": [0.1, 0.9]}, data="multilabel"),
    Case("TrueNegatives", data="binary"),
    Case("FalseNegatives", {"thresholds": [0.0, 0.5, 1.0]}, data="binary"),
    Case("AUC", data="binary"),
    Case("AUC", {"num_thresholds": 7}, data="binary"),
    Case("AUC", {"thresholds": [0.3, 0.5, 0.6]}, data="binary"),
    Case("AUC", {"from_logits": True}, data="binary_logits"),
    Case("AUC", data="multilabel"),
    Case("AUC", {"label_weights": [1.0, 2.0, 0.5, 1.0, 3.0]}, data="multilabel"),
    Case("AUC", {"multi_label": True}, data="multilabel"),
    Case("AUC", {"multi_label": True, "num_labels": 5}, data="multilabel"),
    Case("AUC", {"multi_label": True, "label_weights": [1.0, 2.0, 0.5, 1.0, 3.0]}, data="multilabel"),
    Case("AUC", {"multi_label": True, "from_logits": True, "curve": "PR"}, data="multilabel_logits"),
] + [
    Case("AUC", {"curve": curve, "summation_method": method}, data="binary")
    for curve in ("ROC", "PR", "PRGAIN")
    for method in ("interpolation", "minoring", "majoring")
]


@pytest.mark.keras
@pytest.mark.parametrize("rank1", [False, True], ids=["labels(N,1)", "labels(N,)"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_confusion_matches_keras(case, weighted, rank1, rng):
    """Tolerance: float32 weighted counts; areas sum ~200 terms: rtol=1e-5, atol=1e-6."""
    updates = batches(case.data, rng, weighted=weighted, rank1=rank1)
    for _y_true, y_pred, *_ in updates:  # hit the epsilon ends: predictions of exactly 0 and 1
        y_pred[0], y_pred[1] = (0.0, 1.0) if "logits" not in case.data else (-30.0, 30.0)
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), rtol=case.rtol, atol=case.atol)


def test_confusion_counts_bucketed_equals_broadcast_path():
    y_true = torch.randint(0, 2, (64, 3)).float()
    y_pred = torch.rand(64, 3)
    y_pred[:3] = torch.tensor([0.0, 0.5, 1.0])[:, None]
    thresholds = torch.linspace(0, 1, 11)
    for multi_label in (False, True):
        fast = confusion_counts(y_true, y_pred, thresholds, evenly=True, multi_label=multi_label)
        slow = confusion_counts(y_true, y_pred, thresholds, evenly=False, multi_label=multi_label)
        for a, b in zip(fast, slow):
            torch.testing.assert_close(a, b)


def test_precision_result_is_a_vector_for_several_thresholds():
    m = tcm.Precision(thresholds=[0.3, 0.6])
    m.update_state([1, 0, 1], [0.4, 0.5, 0.9])
    torch.testing.assert_close(m.result(), torch.tensor([2 / 3, 1.0]))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tcm.Precision(thresholds=[0.5, 1.5]), r"Received: thresholds=\[0.5, 1.5\]"),
        (lambda: tcm.AUC(num_thresholds=1), "num_thresholds=1"),
        (lambda: tcm.AUC(curve="XY"), "curve='XY'"),
        (lambda: tcm.AUC(summation_method="trapezoid"), "summation_method='trapezoid'"),
        (lambda: tcm.AUC(num_labels=3), "num_labels=3"),
    ],
)
def test_confusion_refuses_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_auc_multi_label_refuses_rank_1_predictions():
    with pytest.raises(ValueError, match=r"y_pred.shape=\(4,\)"):
        tcm.AUC(multi_label=True).update_state(torch.ones(4), torch.ones(4))


def test_auc_thresholds_have_epsilon_ends():
    thresholds = tcm.AUC(num_thresholds=3).thresholds
    assert thresholds == [-1e-7, 0.5, 1 + 1e-7]


def test_auc_config_round_trips():
    m = tcm.AUC(num_thresholds=50, curve="PR", multi_label=True, label_weights=[1.0, 2.0], thresholds=None)
    assert tcm.AUC.from_config(m.get_config()).get_config() == m.get_config()
