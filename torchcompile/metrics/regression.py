# SPDX-License-Identifier: Apache-2.0
"""Regression metrics: Keras' per-sample errors averaged over samples.

Owns: MeanSquaredError, MeanAbsoluteError. Not: the per-sample loss functions
themselves (``torchcompile/losses/functions.py``).
"""
from __future__ import annotations

import torch

from torchcompile.metrics.metric import MeanMetricWrapper, squeeze_or_expand_to_same_rank

__all__ = ["MeanSquaredError", "MeanAbsoluteError"]


def _mean_squared_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    # Stand-in until torchcompile/losses/functions.py lands; same formula as Keras'.
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
    return (y_true - y_pred).square().mean(dim=-1)


def _mean_absolute_error(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
    return (y_true - y_pred).abs().mean(dim=-1)


class MeanSquaredError(MeanMetricWrapper):
    """The mean of ``(y_true - y_pred) ** 2`` (``keras.metrics.MeanSquaredError``).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = False

    def __init__(self, name: str = "mean_squared_error", dtype: str | torch.dtype | None = None):
        super().__init__(_mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean of ``|y_true - y_pred|`` (``keras.metrics.MeanAbsoluteError``).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = False

    def __init__(self, name: str = "mean_absolute_error", dtype: str | torch.dtype | None = None):
        super().__init__(_mean_absolute_error, name=name, dtype=dtype)
