# SPDX-License-Identifier: Apache-2.0
"""F-scores: FBetaScore and F1Score over thresholded predictions, as Keras 3 computes them.

Owns: per-class true/false positive and false negative sums, and the None / micro / macro /
weighted averages. Not: threshold sweeps (``confusion.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.metrics.metric import Metric

__all__ = ["FBetaScore", "F1Score"]

EPSILON = 1e-7  # keras.backend.epsilon()
_STATES = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")


class FBetaScore(Metric):
    """The F-beta score, ``(1 + beta**2) * p * r / (beta**2 * p + r)``, per class or averaged.

    Inputs are ``(batch_size, num_classes)``: ``y_true`` one-hot or multi-hot, ``y_pred`` scores.

    Args:
        average: ``None`` (default; a vector, one score per class), ``"micro"`` (pool all
            classes), ``"macro"`` (the mean of the class scores) or ``"weighted"`` (weighted
            by each class' number of true instances).
        beta: the weight of recall relative to precision, a float > 0 (default 1.0).
        threshold: predictions above it are positive; ``None`` (default) marks the highest
            prediction of each row positive.

    Also takes the arguments of ``Metric``.

    Example:
        >>> m = FBetaScore(beta=2.0, average="micro", threshold=0.5)
        >>> m.update_state([[1, 0], [0, 1]], [[0.9, 0.2], [0.6, 0.4]])
        >>> round(float(m.result()), 4)
        0.5
    """

    higher_is_better = True
    _config_keys = ("average", "beta", "threshold")

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"FBetaScore's average must be one of None, 'micro', 'macro', 'weighted'. Received: average={average!r}"
            )
        if not isinstance(beta, float) or beta <= 0.0:
            raise ValueError(f"FBetaScore's beta must be a Python float > 0. Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or not 0.0 < threshold <= 1.0):
            raise ValueError(
                "FBetaScore's threshold must be a Python float with 0 < threshold <= 1. "
                f"Received: threshold={threshold!r}"
            )
        self.average, self.beta, self.threshold = average, beta, threshold
        self._dim = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs of shape (batch_size, num_classes). "
                f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        zeros = torch.zeros(() if self.average == "micro" else (y_pred.shape[-1],))
        for state in _STATES:
            self.add_state(state, zeros)
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = self._tensor(y_true, self.dtype), self._tensor(y_pred, self.dtype)
        if not self._built:
            self._build(y_true, y_pred)
        if self.threshold is None:
            top = y_pred.amax(dim=-1, keepdim=True)
            y_pred = (y_pred >= top) & (y_pred.abs() > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = y_pred.to(self.dtype)
        weight = None if sample_weight is None else self._tensor(sample_weight, self.dtype).unsqueeze(1)

        def weighted_sum(value: torch.Tensor) -> torch.Tensor:
            value = value if weight is None else value * weight
            return value.sum() if self._dim is None else value.sum(dim=self._dim)

        self.true_positives.add_(weighted_sum(y_pred * y_true))
        self.false_positives.add_(weighted_sum(y_pred * (1 - y_true)))
        self.false_negatives.add_(weighted_sum((1 - y_pred) * y_true))
        self.intermediate_weights.add_(weighted_sum(y_true))

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        beta_sq = self.beta**2
        score = precision * recall / (beta_sq * precision + recall + EPSILON) * (1 + beta_sq)
        if self.average == "weighted":
            weights = self.intermediate_weights / (self.intermediate_weights.sum() + EPSILON)
            return (score * weights).sum()
        if self.average is not None:
            return score.mean()
        return score


class F1Score(FBetaScore):
    """The F1 score, the harmonic mean of precision and recall: ``FBetaScore(beta=1.0)``.

    Args:
        average: as ``FBetaScore``'s (default ``None``, one score per class).
        threshold: as ``FBetaScore``'s.

    Also takes the arguments of ``Metric``.
    """

    _config_keys = ("average", "threshold")

    def __init__(
        self, average: str | None = None, threshold: float | None = None, name: str = "f1_score", dtype: Any = None
    ):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)
