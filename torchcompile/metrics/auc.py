# SPDX-License-Identifier: Apache-2.0
"""AUC, as Keras 3 computes it: the area under the ROC, PR or PR-gain curve by a Riemann sum.

Owns: AUC's threshold scheme (``num_thresholds`` evenly spaced, the ends moved by epsilon),
its four count states, and the ROC / PR / PR-gain areas with Keras' summation methods. Not:
counting (``confusion.py``'s ``confusion_counts`` and ``_ThresholdMetric``).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.metrics.confusion import EPSILON, _evenly_distributed, _ThresholdMetric
from torchcompile.metrics.metric import divide_no_nan

__all__ = ["AUC"]

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
