# SPDX-License-Identifier: Apache-2.0
"""Keras' per-sample loss functions in torch. Owns: regression and hinge numerics, and the one
import point for every per-sample function (the probabilistic ones live in ``probabilistic.py``).

Each function takes ``(y_true, y_pred)`` in Keras' order, accepts tensors or array-likes, and
returns per-sample values (the last axis reduced), as Keras 3's do. ``y_true`` and ``y_pred`` go
through Keras' squeeze-or-expand rule first, so ``(N,)`` against ``(N, 1)`` works, and a pair that
would silently broadcast raises (``checks.squeeze_or_expand``). Not: reductions (``loss.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from torchcompile.losses.checks import to_tensor_pair
from torchcompile.losses.probabilistic import (
    EPSILON,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)

__all__ = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "cosine_similarity",
    "huber",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "poisson",
]


def mean_squared_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(square(y_true - y_pred), axis=-1)``.

    Example:
        >>> mean_squared_error([[0.0, 1.0]], [[1.0, 1.0]])
        tensor([0.5000])
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)), axis=-1)``."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp_min(torch.abs(y_true), EPSILON))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(square(log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1)), axis=-1)``."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    first_log = torch.log(torch.clamp_min(y_pred, EPSILON) + 1.0)
    second_log = torch.log(torch.clamp_min(y_true, EPSILON) + 1.0)
    return torch.mean(torch.square(first_log - second_log), dim=-1)


def _l2_normalize(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Keras' ``ops.normalize``: ``x * min(rsqrt(sum(x**2)), 1 / epsilon)``."""
    inv_norm = torch.rsqrt(torch.sum(torch.square(x), dim=axis, keepdim=True))
    return x * torch.clamp_max(inv_norm, 1.0 / EPSILON)


def cosine_similarity(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Negative cosine similarity along ``axis``: -1 when aligned, 0 when orthogonal.

    Args:
        axis: the axis holding the vectors.
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    return -torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: quadratic for errors up to ``delta``, linear beyond, averaged on the last axis.

    Args:
        delta: where the loss turns from quadratic to linear.
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    error = y_pred - y_true
    abs_error = torch.abs(error)
    quadratic = 0.5 * torch.square(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return torch.mean(torch.where(abs_error <= delta, quadratic, linear), dim=-1)


def log_cosh(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed stably as ``x + softplus(-2x) - log 2``."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    x = y_pred - y_true
    log2 = torch.tensor(math.log(2.0), dtype=y_pred.dtype, device=y_pred.device)
    return torch.mean(x + F.softplus(x * -2.0) - log2, dim=-1)


def _hinge_labels(y_true: torch.Tensor) -> torch.Tensor:
    """Labels in {0, 1} become {-1, 1}; other labels stay. Decided on the device, without a sync."""
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(max(1 - y_true * y_pred, 0), axis=-1)``, with {0, 1} labels read as {-1, 1}."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.clamp_min(1.0 - y_true * y_pred, 0.0), dim=-1)


def squared_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``mean(square(max(1 - y_true * y_pred, 0)), axis=-1)``, with {0, 1} labels read as {-1, 1}."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.square(torch.clamp_min(1.0 - y_true * y_pred, 0.0)), dim=-1)


def categorical_hinge(y_true: Any, y_pred: Any) -> torch.Tensor:
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp_min(neg - pos + 1.0, 0.0)
