# SPDX-License-Identifier: Apache-2.0
"""Regression metrics: Keras' per-sample errors averaged over samples, RMSE and R².

Owns: MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError,
MeanAbsolutePercentageError, MeanSquaredLogarithmicError, CosineSimilarity,
LogCoshError, R2Score, and the metric form of ``cosine_similarity`` (positive, unlike
the loss). Not: the per-sample loss functions (``torchcompile/losses/functions.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank
from torchcompile.losses import functions as loss_fns
from torchcompile.metrics.metric import Mean, MeanMetricWrapper, Metric

__all__ = [
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "LogCoshError",
    "R2Score",
    "cosine_similarity",
]


def cosine_similarity(y_true: torch.Tensor, y_pred: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Cosine similarity along ``axis``: 1 when aligned (the metric's sign, not the loss')."""
    return -loss_fns.cosine_similarity(y_true, y_pred, axis=axis)


class _ErrorMetric(MeanMetricWrapper):
    """A MeanMetricWrapper over a loss function: lower is better."""

    higher_is_better = False
    _fn: Any = None

    def __init__(self, name: str, dtype: Any = None):
        super().__init__(type(self)._fn, name=name, dtype=dtype)


class MeanSquaredError(_ErrorMetric):
    """The mean of ``(y_true - y_pred) ** 2``. Also takes the arguments of ``Metric``."""

    _fn = staticmethod(loss_fns.mean_squared_error)

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)


class MeanAbsoluteError(_ErrorMetric):
    """The mean of ``|y_true - y_pred|``. Also takes the arguments of ``Metric``."""

    _fn = staticmethod(loss_fns.mean_absolute_error)

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)


class MeanAbsolutePercentageError(_ErrorMetric):
    """The mean of ``100 * |y_true - y_pred| / max(|y_true|, 1e-7)``.

    Also takes the arguments of ``Metric``.
    """

    _fn = staticmethod(loss_fns.mean_absolute_percentage_error)

    def __init__(self, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_ErrorMetric):
    """The mean of ``(log(1 + y_pred) - log(1 + y_true)) ** 2``.

    Also takes the arguments of ``Metric``.
    """

    _fn = staticmethod(loss_fns.mean_squared_logarithmic_error)

    def __init__(self, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)


class LogCoshError(_ErrorMetric):
    """The mean of ``log(cosh(y_pred - y_true))``. Named ``"logcosh"`` by default, as Keras.

    Also takes the arguments of ``Metric``.
    """

    _fn = staticmethod(loss_fns.log_cosh)

    def __init__(self, name: str = "logcosh", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)


class CosineSimilarity(MeanMetricWrapper):
    """The mean cosine similarity between ``y_true`` and ``y_pred`` along ``axis``.

    Args:
        axis: the axis holding the vectors (default -1).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(self, name: str = "cosine_similarity", dtype: Any = None, axis: int = -1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)


class RootMeanSquaredError(Mean):
    """The square root of the (weighted) mean of ``(y_true - y_pred) ** 2``.

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = False

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = self._tensor(y_true, self.dtype), self._tensor(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state((y_pred - y_true).square(), sample_weight=sample_weight)

    update = Metric.update  # (preds, target), not Mean's (value, weight)

    def result(self) -> torch.Tensor:
        return super().result().sqrt()


class R2Score(Metric):
    """The coefficient of determination, per output then aggregated (``keras.metrics.R2Score``).

    Inputs are ``(batch_size, num_outputs)``. Keras warns when ``num_regressors`` leaves
    too few degrees of freedom and falls back to plain R²; the fallback is kept (chosen
    on the device), the warning is not, since it would need a host sync.

    Args:
        class_aggregation: ``"uniform_average"`` (default), ``"variance_weighted_average"``,
            or ``None`` for the vector of per-output scores.
        num_regressors: the number of independent regressors, for adjusted R² (default 0).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True
    _config_keys = ("class_aggregation", "num_regressors")

    def __init__(
        self,
        class_aggregation: str | None = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ):
        super().__init__(name=name, dtype=dtype)
        valid = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in valid:
            raise ValueError(
                f"R2Score's class_aggregation must be one of {valid}. Received: class_aggregation={class_aggregation!r}"
            )
        if num_regressors < 0:
            raise ValueError(f"R2Score's num_regressors must be >= 0. Received: num_regressors={num_regressors!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.add_state("num_samples", 0.0)
        self._built = False

    def _build(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        if y_true.ndim != 2 or y_pred.ndim != 2:
            raise ValueError(
                "R2Score expects 2D inputs of shape (batch_size, output_dim). Received: "
                f"y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        zeros = torch.zeros(y_pred.shape[-1])
        for state in ("squared_sum", "sum", "total_mse", "count"):
            self.add_state(state, zeros)
        self._built = True

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = self._tensor(y_true, self.dtype), self._tensor(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if not self._built:
            self._build(y_true, y_pred)
        weight = self._tensor(1.0 if sample_weight is None else sample_weight, self.dtype)
        if weight.ndim == 1:
            weight = weight.unsqueeze(1)
        weight = torch.broadcast_to(weight, y_true.shape)
        weighted_y_true = y_true * weight
        self.sum.add_(weighted_y_true.sum(dim=0))
        self.squared_sum.add_((y_true * weighted_y_true).sum(dim=0))
        self.total_mse.add_(((y_true - y_pred).square() * weight).sum(dim=0))
        self.count.add_(weight.sum(dim=0))
        self.num_samples.add_(y_true.numel())

    def result(self) -> torch.Tensor:
        if not self._built:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        raw_scores = 1 - self.total_mse / total
        raw_scores = torch.where(raw_scores.isinf(), torch.zeros_like(raw_scores), raw_scores)
        if self.class_aggregation == "uniform_average":
            score = raw_scores.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = (total * raw_scores).sum() / total.sum()
        else:
            score = raw_scores
        if self.num_regressors == 0:
            return score
        n, p = self.num_samples, self.num_regressors
        adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
        return torch.where(p < n - 1.0, adjusted, score)
