# SPDX-License-Identifier: Apache-2.0
"""Confusion-matrix metrics: Precision, Recall, AUC and the raw counts, as Keras 3 keeps them.

Owns: the per-threshold true/false positive/negative counts (``confusion_counts``), Keras'
threshold scheme (AUC's ``num_thresholds`` evenly spaced with epsilon endpoints), top-k and
class-id filtering, and the ROC / PR / PR-gain areas. Not: F-scores (``f_score.py``).

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
    "AUC",
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


_STATES = ("true_positives", "false_positives", "true_negatives", "false_negatives")
_CURVES = {"ROC": "ROC", "roc": "ROC", "PR": "PR", "pr": "PR", "PRGAIN": "PRGAIN", "prgain": "PRGAIN"}
_SUMMATIONS = {
    "interpolation": "interpolation",
    "Interpolation": "interpolation",
    "minoring": "minoring",
    "Minoring": "minoring",
    "majoring": "majoring",
    "Majoring": "majoring",
}


def _lookup(table: dict[str, str], value: Any, arg: str) -> str:
    if value not in table:
        raise ValueError(f"AUC's {arg} must be one of {sorted(set(table.values()))}. Received: {arg}={value!r}")
    return table[value]


class AUC(_ThresholdMetric):
    """Area under the ROC or PR curve by a Riemann sum over thresholds (``keras.metrics.AUC``).

    Args:
        num_thresholds: thresholds ``i / (num_thresholds - 1)``, the ends moved by epsilon to
            ``-1e-7`` and ``1 + 1e-7`` so predictions of exactly 0 or 1 are counted (default 200).
        curve: ``"ROC"`` (default), ``"PR"`` or ``"PRGAIN"``.
        summation_method: ``"interpolation"`` (default; Davis & Goadrich for PR),
            ``"minoring"`` or ``"majoring"``.
        thresholds: explicit thresholds in [0, 1], used instead of ``num_thresholds``.
        multi_label: one curve per label (the last axis), averaged; else labels are pooled.
        num_labels: the number of labels with ``multi_label`` (else taken from the first batch).
        label_weights: per-label weights (for pooling, or for averaging with ``multi_label``).
        from_logits: apply a sigmoid to ``y_pred`` first.

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: Any = None,
        thresholds: Any = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ):
        super().__init__(name=name, dtype=dtype)
        self.curve = _lookup(_CURVES, curve, "curve")
        self.summation_method = _lookup(_SUMMATIONS, summation_method, "summation_method")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            evenly = _evenly_distributed([0.0] + inner + [1.0])
        elif num_thresholds <= 1:
            raise ValueError(f"AUC's num_thresholds must be an integer > 1. Received: num_thresholds={num_thresholds}")
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            evenly = True
        self.num_thresholds = len(inner) + 2
        self._set_thresholds([0.0 - EPSILON] + inner + [1.0 + EPSILON], evenly)
        self.multi_label, self.num_labels, self.from_logits = multi_label, num_labels, from_logits
        weights = None if label_weights is None else self._tensor(label_weights, self.dtype)
        self.register_buffer("label_weights", weights, persistent=False)
        self._built = False
        if num_labels and not multi_label:
            raise ValueError(
                f"`num_labels` is needed only when `multi_label` is True. Received: num_labels={num_labels}"
            )
        if num_labels or not multi_label:
            self._build(num_labels if multi_label else None)

    @property
    def thresholds(self) -> list[float]:
        return list(self._threshold_values)

    def _build(self, num_labels: int | None) -> None:
        shape = (self.num_thresholds,) if num_labels is None else (self.num_thresholds, num_labels)
        for state in _STATES:
            self.add_state(state, torch.zeros(shape))
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = self._tensor(y_pred, self.dtype)
        if not self._built:
            if y_pred.ndim != 2:
                raise ValueError(
                    f"`y_pred` must have rank 2 when `multi_label=True`. Received: y_pred.shape={tuple(y_pred.shape)}"
                )
            self._build(y_pred.shape[1])
        if self.from_logits:
            y_pred = torch.sigmoid(y_pred)
        counts = self._counts(
            y_true,
            y_pred,
            sample_weight,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )
        for state, value in zip(_STATES, counts):  # Counts is (tp, fp, tn, fn), the states' order
            getattr(self, state).add_(value)

    def _average(self, by_threshold: torch.Tensor) -> torch.Tensor:
        """Sum over thresholds; with multi_label, average the per-label areas."""
        if not self.multi_label:
            return by_threshold.sum()
        by_label = by_threshold.sum(0)
        if self.label_weights is None:
            return by_label.mean()
        return divide_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum())

    def _interpolate_pr_auc(self) -> torch.Tensor:
        """Davis & Goadrich's interpolation of the PR curve, as Keras' ``interpolate_pr_auc``."""
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        prec_slope = divide_no_nan(dtp, dp.clamp_min(0))
        intercept = tp[1:] - prec_slope * p[1:]
        both_pos = (p[:-1] > 0) & (p[1:] > 0)
        safe_p_ratio = torch.where(both_pos, divide_no_nan(p[:-1], p[1:].clamp_min(0)), torch.ones_like(p[1:]))
        increment = divide_no_nan(
            prec_slope * (dtp + intercept * torch.log(safe_p_ratio)), (tp[1:] + fn[1:]).clamp_min(0)
        )
        return self._average(increment)

    def _curve(self) -> tuple[torch.Tensor, torch.Tensor]:
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            return divide_no_nan(fp, fp + tn), recall
        if self.curve == "PR":
            return recall, divide_no_nan(tp, tp + fp)
        scaling = divide_no_nan(tp + fn, tn + fp)
        recall_gain = torch.where(tp == 0, 0.0, 1.0 - scaling * divide_no_nan(fn, tp)).clamp_min(0.0)
        precision_gain = torch.where(tp == 0, 1.0, 1.0 - scaling * divide_no_nan(fp, tp))
        return recall_gain, precision_gain

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        x, y = self._curve()
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[:-1], y[1:])
        else:
            heights = torch.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "from_logits": self.from_logits,
            "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
