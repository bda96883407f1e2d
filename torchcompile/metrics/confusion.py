# SPDX-License-Identifier: Apache-2.0
"""Confusion-matrix metrics: Precision, Recall and the raw counts, as Keras 3 keeps them.

Owns: the per-threshold true/false positive/negative counts (``confusion_counts``), Keras'
thresholds, top-k and class-id filtering, and ``_ThresholdMetric``, the base of these metrics
and of AUC. Not: AUC's thresholds and areas (``auc.py``), F-scores (``f_score.py``).

Counting is vectorised: evenly spaced thresholds use one bucket index per prediction
(``index_add_`` then a reversed cumulative sum, Keras' optimised path); other thresholds
use one broadcast comparison of every prediction against every threshold.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank
from torchcompile.metrics.metric import Metric, divide_no_nan

__all__ = [
    "Precision",
    "Recall",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "confusion_counts",
]

NEG_INF = -1e10  # Keras' stand-in for predictions outside the top k
EPSILON = 1e-7  # keras.backend.epsilon()


class Counts(NamedTuple):
    """Weighted counts per threshold (and per label when multi-label)."""

    tp: torch.Tensor
    fp: torch.Tensor
    tn: torch.Tensor
    fn: torch.Tensor


def _parse_thresholds(thresholds: Any, default: float) -> list[float]:
    values = (
        [default]
        if thresholds is None
        else (list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds])
    )
    if thresholds is not None:
        bad = [t for t in values if t is None or t < 0 or t > 1]
        if bad:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: thresholds={thresholds!r}")
    return [float(t) for t in values]


def _evenly_distributed(thresholds: list[float]) -> bool:
    """Keras' test for thresholds ``i / (n - 1)``, which allow the bucketed update."""
    n = len(thresholds)
    return n >= 3 and all(abs(t - i / (n - 1)) <= EPSILON + 1e-5 * i / (n - 1) for i, t in enumerate(thresholds))


def _filter_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the top ``k`` predictions per row; push the rest to ``NEG_INF`` (Keras' formula)."""
    idx = x.topk(k, dim=-1).indices
    mask = torch.zeros_like(x).scatter_(-1, idx, 1.0)
    return x * mask + NEG_INF * (1 - mask)


def _weights(
    sample_weight: torch.Tensor | None, label_weights: torch.Tensor | None, y_pred: torch.Tensor
) -> torch.Tensor | None:
    weights = None
    if sample_weight is not None:
        weights = torch.broadcast_to(sample_weight.to(y_pred.dtype), y_pred.shape)
    if label_weights is not None:
        label_weights = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape)
        weights = label_weights if weights is None else weights * label_weights
    return weights


def _bucket_counts(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    weights: torch.Tensor | None,
    num_thresholds: int,
    multi_label: bool,
    with_epsilon: bool,
) -> Counts:
    """Keras' optimised path for thresholds ``i / (T - 1)``: one bucket per prediction."""
    t = num_thresholds
    y_pred = y_pred.clamp(0.0, 1.0)
    y_true = (y_true != 0).to(y_pred.dtype)
    w = 1.0 if weights is None else weights
    true_labels, false_labels = y_true * w, (1.0 - y_true) * w
    buckets = torch.ceil(y_pred * (t - 1)) - 1
    buckets = (buckets.clamp_min(0) if with_epsilon else buckets).to(torch.int64)
    buckets = torch.where((buckets >= 0) & (buckets < t), buckets, t)  # bucket t is dropped
    if multi_label:
        labels = y_pred.shape[-1]
        flat = (buckets * labels + torch.arange(labels, device=y_pred.device)).reshape(-1)
        size, shape = (t + 1) * labels, (t + 1, labels)
    else:
        flat, size, shape = buckets.reshape(-1), t + 1, (t + 1,)
        true_labels, false_labels = true_labels.reshape(-1), false_labels.reshape(-1)

    def per_threshold(values: torch.Tensor) -> torch.Tensor:
        binned = values.new_zeros(size).index_add_(0, flat, values.reshape(-1)).reshape(shape)[:t]
        return binned.flip(0).cumsum(0).flip(0)  # count of predictions above each threshold

    tp, fp = per_threshold(true_labels), per_threshold(false_labels)
    return Counts(tp, fp, false_labels.sum(0) - fp, true_labels.sum(0) - tp)


def _compare_counts(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    weights: torch.Tensor | None,
    thresholds: torch.Tensor,
    multi_label: bool,
) -> Counts:
    """Any thresholds: compare every prediction with every threshold at once."""
    if multi_label:
        preds, labels, thr = y_pred.unsqueeze(0), (y_true != 0).unsqueeze(0), thresholds.view(-1, 1, 1)
        w = None if weights is None else weights.unsqueeze(0)
    else:
        preds, labels, thr = y_pred.reshape(1, -1), (y_true != 0).reshape(1, -1), thresholds.view(-1, 1)
        w = None if weights is None else weights.reshape(1, -1)
    pred_pos = preds > thr

    def count(mask: torch.Tensor) -> torch.Tensor:
        return (mask.to(y_pred.dtype) if w is None else torch.where(mask, w, 0.0)).sum(1)

    return Counts(
        count(labels & pred_pos), count(~labels & pred_pos), count(~labels & ~pred_pos), count(labels & ~pred_pos)
    )


def confusion_counts(
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    thresholds: torch.Tensor,
    *,
    evenly: bool = False,
    with_epsilon: bool = False,
    top_k: int | None = None,
    class_id: int | None = None,
    sample_weight: torch.Tensor | None = None,
    multi_label: bool = False,
    label_weights: torch.Tensor | None = None,
) -> Counts:
    """Keras' ``update_confusion_matrix_variables``, returning this batch's counts.

    Args:
        y_true, y_pred: labels (non-zero is positive) and scores, in the state's dtype.
        thresholds: 1-D; a prediction is positive at a threshold when strictly above it.
        evenly: thresholds are ``i / (T - 1)``, except perhaps the ends.
        with_epsilon: with ``evenly``, the ends are ``-epsilon`` and ``1 + epsilon`` (AUC's).
        top_k, class_id: Keras' filters on the last axis.
        sample_weight: per-sample (or broadcastable) weights.
        multi_label: keep the last axis as separate labels instead of pooling it.
        label_weights: per-class weights (not with ``multi_label``).
    """
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight.unsqueeze(-1), expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(
                "When class_id is given, y_pred must have shape (num_samples, num_classes). "
                f"Received: y_pred.shape={tuple(y_pred.shape)}"
            )
        y_true, y_pred = y_true[..., class_id, None], y_pred[..., class_id, None]
    weights = _weights(sample_weight, label_weights, y_pred)
    if evenly:
        return _bucket_counts(y_true, y_pred, weights, thresholds.shape[0], multi_label, with_epsilon)
    return _compare_counts(y_true, y_pred, weights, thresholds, multi_label)


class _ThresholdMetric(Metric):
    """Holds the thresholds as a Python list (for shapes and config) and a device tensor."""

    def _set_thresholds(self, values: list[float], evenly: bool) -> None:
        self._threshold_values, self._evenly = values, evenly
        self._with_epsilon = evenly and (values[0] < 0.0 or values[-1] > 1.0)
        self.register_buffer("_thresholds", torch.tensor(values, dtype=self.dtype).to(self._device), persistent=False)

    def _counts(self, y_true: Any, y_pred: Any, sample_weight: Any, **kwargs: Any) -> Counts:
        weight = None if sample_weight is None else self._tensor(sample_weight, self.dtype)
        return confusion_counts(
            self._tensor(y_true, self.dtype),
            self._tensor(y_pred, self.dtype),
            self._thresholds,
            evenly=self._evenly,
            with_epsilon=self._with_epsilon,
            sample_weight=weight,
            **kwargs,
        )


class _CountMetric(_ThresholdMetric):
    """The weighted count of one confusion-matrix cell per threshold (Keras' TruePositives...)."""

    _cell = "tp"

    def __init__(self, thresholds: Any = None, name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        values = _parse_thresholds(thresholds, 0.5)
        self._set_thresholds(values, _evenly_distributed(values))
        self.add_state("accumulator", torch.zeros(len(values)))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.accumulator.add_(getattr(self._counts(y_true, y_pred, sample_weight), self._cell))

    def result(self) -> torch.Tensor:
        return self.accumulator[0].clone() if len(self._threshold_values) == 1 else self.accumulator.clone()

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_CountMetric):
    """Weighted count of true positives. Args: ``thresholds`` (default 0.5), name, dtype."""

    _cell, higher_is_better = "tp", True


class FalsePositives(_CountMetric):
    """Weighted count of false positives. Args: ``thresholds`` (default 0.5), name, dtype."""

    _cell, higher_is_better = "fp", False


class TrueNegatives(_CountMetric):
    """Weighted count of true negatives. Args: ``thresholds`` (default 0.5), name, dtype."""

    _cell, higher_is_better = "tn", True


class FalseNegatives(_CountMetric):
    """Weighted count of false negatives. Args: ``thresholds`` (default 0.5), name, dtype."""

    _cell, higher_is_better = "fn", False


class Precision(_ThresholdMetric):
    """``tp / (tp + fp)`` at one or more thresholds (``keras.metrics.Precision``).

    Args:
        thresholds: a float or list of floats in [0, 1]; predictions strictly above count as
            positive. Default 0.5, or none at all with ``top_k``. A list gives a vector result.
        top_k: only the ``k`` highest predictions of each row count as positive.
        class_id: compute the metric for this class (last axis) only.

    Also takes the arguments of ``Metric``.

    Example:
        >>> m = Precision()
        >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
        >>> m.result()
        tensor(0.6667)
    """

    higher_is_better = True
    _other = ("false_positives", "fp")

    def __init__(
        self,
        thresholds: Any = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        values = _parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._set_thresholds(values, _evenly_distributed(values))
        self.add_state("true_positives", torch.zeros(len(values)))
        self.add_state(self._other[0], torch.zeros(len(values)))

    @property
    def thresholds(self) -> list[float]:
        return list(self._threshold_values)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = self._counts(y_true, y_pred, sample_weight, top_k=self.top_k, class_id=self.class_id)
        self.true_positives.add_(counts.tp)
        getattr(self, self._other[0]).add_(getattr(counts, self._other[1]))

    def result(self) -> torch.Tensor:
        result = divide_no_nan(self.true_positives, self.true_positives + getattr(self, self._other[0]))
        return result[0] if len(self._threshold_values) == 1 else result

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Recall(Precision):
    """``tp / (tp + fn)`` at one or more thresholds (``keras.metrics.Recall``).

    Takes the arguments of ``Precision``.
    """

    _other = ("false_negatives", "fn")
