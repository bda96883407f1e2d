# SPDX-License-Identifier: Apache-2.0
"""IoU metrics against Keras 3 after NUM_BATCHES seeded segmentation updates."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import NUM_BATCHES, Case, run

C = 4


def _segmentation(rng, y_true_kind, y_pred_kind, weight_kind):
    """Labels of 2 x 6 x 5 pixels; ids, one-hot or scores; weights per pixel or per image."""
    updates = []
    for _ in range(NUM_BATCHES):
        ids_true, ids_pred = rng.integers(0, C, (2, 6, 5)), rng.integers(0, C, (2, 6, 5))
        ids_pred[0, 0] = C + 1  # out of range: Keras' bounds mask drops it
        y_true = np.eye(C, dtype="float32")[ids_true] if y_true_kind == "onehot" else ids_true
        y_pred = {
            "ids": ids_pred,
            "onehot": np.eye(C, dtype="float32")[ids_pred % C],
            "scores": rng.random((2, 6, 5, C), dtype="float32"),
        }[y_pred_kind]
        weight = {
            None: None,
            "pixel_int": rng.integers(0, 3, (2, 6, 5)),
            "pixel_float": rng.random((2, 6, 5), dtype="float32") * 3,
        }[weight_kind]
        updates.append((y_true, y_pred) if weight is None else (y_true, y_pred, weight))
    return updates


@pytest.mark.keras
@pytest.mark.filterwarnings("ignore:.*weight.*:UserWarning")  # both warn that float weights are truncated
@pytest.mark.parametrize("weight_kind", [None, "pixel_int", "pixel_float"])
@pytest.mark.parametrize(
    "case, y_true_kind, y_pred_kind",
    [
        (Case("MeanIoU", {"num_classes": C}), "ids", "ids"),
        (Case("MeanIoU", {"num_classes": C, "ignore_class": 0}), "ids", "ids"),
        (Case("MeanIoU", {"num_classes": C, "sparse_y_pred": False}), "ids", "scores"),
        (Case("MeanIoU", {"num_classes": C, "sparse_y_true": False, "sparse_y_pred": False}), "onehot", "scores"),
        (Case("MeanIoU", {"num_classes": C, "dtype": "float32"}), "ids", "ids"),
        (Case("IoU", {"num_classes": C, "target_class_ids": [1, 3]}), "ids", "ids"),
        (Case("OneHotIoU", {"num_classes": C, "target_class_ids": [0, 2]}), "onehot", "scores"),
        (Case("OneHotMeanIoU", {"num_classes": C, "ignore_class": 2}), "onehot", "scores"),
    ],
    ids=lambda x: x.id if isinstance(x, Case) else x,
)
def test_iou_matches_keras(case, y_true_kind, y_pred_kind, weight_kind, rng):
    """Tolerance: IoUs of integer (or float32) counts, rtol=1e-6, atol=1e-7."""
    updates = _segmentation(rng, y_true_kind, y_pred_kind, weight_kind)
    np.testing.assert_allclose(run(case.ours(), updates), run(case.theirs(), updates), rtol=1e-6, atol=1e-7)


@pytest.mark.keras
@pytest.mark.parametrize("kwargs", [{}, {"threshold": 0.3}, {"target_class_ids": [1]}])
def test_binary_iou_matches_keras(kwargs, rng):
    updates = [(rng.integers(0, 2, (16,)), rng.random((16,), dtype="float32")) for _ in range(NUM_BATCHES)]
    case = Case("BinaryIoU", kwargs)
    np.testing.assert_allclose(run(case.ours(), updates), run(case.theirs(), updates), rtol=1e-6, atol=1e-7)


def test_mean_iou_state_is_int64_by_default_and_counts_exactly():
    m = tcm.MeanIoU(num_classes=2)
    m.update_state(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    assert m.total_cm.dtype == torch.int64 and m.total_cm.tolist() == [[1, 1], [1, 1]]
    torch.testing.assert_close(m.result(), torch.tensor(1 / 3))


def test_mean_iou_warns_that_float_weights_are_truncated():
    with pytest.warns(UserWarning, match="truncates float sample weights"):
        tcm.MeanIoU(num_classes=2).update_state([0, 1], [0, 1], sample_weight=np.array([0.5, 1.5]))


def test_iou_refuses_target_class_out_of_range():
    with pytest.raises(ValueError, match=r"target_class_ids=\[0, 5\]"):
        tcm.IoU(num_classes=3, target_class_ids=[0, 5])


def test_mean_iou_config_round_trips():
    m = tcm.MeanIoU(num_classes=3, ignore_class=1, sparse_y_pred=False)
    assert tcm.MeanIoU.from_config(m.get_config()).get_config() == m.get_config()
