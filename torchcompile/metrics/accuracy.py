# SPDX-License-Identifier: Apache-2.0
"""Accuracy metrics: per-sample match functions and thin Mean wrappers over them.

Owns: exact-match, binary (thresholded), categorical, sparse categorical and top-k
accuracy, with Keras 3's shape rules. Not: choosing among them for ``"accuracy"``
(the engine's compile_utils does that from shapes, as Keras does).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank
from torchcompile.metrics.metric import MeanMetricWrapper

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
]

_FLOAT = torch.float32  # Keras' floatx: match indicators are float32 whatever the inputs


def accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """1.0 where ``y_true == y_pred`` exactly, else 0.0."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true.to(y_pred.dtype), y_pred)
    return (y_true == y_pred).to(_FLOAT)


def binary_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """1.0 where ``y_pred > threshold`` agrees with the 0/1 label ``y_true``."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return (y_true == (y_pred > threshold).to(y_true.dtype)).to(_FLOAT)


def categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """1.0 where the arg-max of one-hot ``y_true`` equals the arg-max of ``y_pred``."""
    y_true = y_true.argmax(dim=-1).to(y_pred.dtype)
    org_shape = y_true.shape
    reshape_matches = y_true.ndim == y_pred.ndim
    if reshape_matches:
        y_true = y_true.squeeze(-1)
    matches = (y_true == y_pred.argmax(dim=-1).to(y_true.dtype)).to(_FLOAT)
    return matches.reshape(org_shape) if reshape_matches else matches


def sparse_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """1.0 where the integer label ``y_true`` equals the arg-max of ``y_pred``."""
    org_shape = y_true.shape
    reshape_matches = y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1
    if reshape_matches:
        y_true = y_true.squeeze(-1)
    predicted = y_pred.argmax(dim=-1)
    if y_true.is_floating_point() or y_true.dtype == torch.bool:
        predicted = predicted.to(y_pred.dtype)  # Keras compares in y_pred's dtype
        y_true = y_true.to(y_pred.dtype)
    matches = (y_true == predicted).to(_FLOAT)  # integer labels: compared as integers, no casts
    if reshape_matches:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = matches.squeeze(-1)
    return matches


def _in_top_k(targets: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    """Keras' ``ops.in_top_k``: the target's score is at least the k-th largest (ties count)."""
    k = min(k, predictions.shape[-1])
    kth_largest = predictions.topk(k, dim=-1).values[..., -1:]
    target_score = predictions.gather(-1, targets.to(torch.int64)[:, None])
    return (target_score >= kth_largest).squeeze(-1)


def _top_k_matches(labels: torch.Tensor, y_pred: torch.Tensor, k: int, from_sorted_ids: bool = False) -> torch.Tensor:
    org_shape = labels.shape
    if y_pred.ndim > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if labels.ndim > 1:
        labels = labels.reshape(-1)
    if from_sorted_ids:
        matches = (labels[:, None] == y_pred[:, :k]).any(dim=1)
    else:
        matches = _in_top_k(labels, y_pred, k)
    return matches.to(_FLOAT).reshape(org_shape)


def top_k_categorical_accuracy(y_true: torch.Tensor, y_pred: torch.Tensor, k: int = 5) -> torch.Tensor:
    """1.0 where the one-hot target is among the ``k`` highest scores of ``y_pred``."""
    return _top_k_matches(y_true.argmax(dim=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(
    y_true: torch.Tensor, y_pred: torch.Tensor, k: int = 5, from_sorted_ids: bool = False
) -> torch.Tensor:
    """1.0 where the integer target is among the ``k`` highest scores of ``y_pred``.

    With ``from_sorted_ids=True``, ``y_pred`` holds class ids sorted by score instead.
    """
    y_true = y_true.to(y_pred.dtype if from_sorted_ids else torch.int64)
    return _top_k_matches(y_true, y_pred, k, from_sorted_ids)


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly (``keras.metrics.Accuracy``).

    Also takes the arguments of ``Metric``.

    Example:
        >>> m = Accuracy()
        >>> m.update_state([1, 2, 3, 4], [0, 2, 3, 4])
        >>> m.result()
        tensor(0.7500)
    """

    higher_is_better = True

    def __init__(self, name: str = "accuracy", dtype: str | torch.dtype | None = None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary label.

    Args:
        threshold: predictions above it count as 1 (default 0.5).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(self, name: str = "binary_accuracy", dtype: str | torch.dtype | None = None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of ``y_pred`` matches the one-hot label.

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(self, name: str = "categorical_accuracy", dtype: str | torch.dtype | None = None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of ``y_pred`` matches the integer label.

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: str | torch.dtype | None = None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if (
            sample_weight is None
            and isinstance(y_pred, torch.Tensor)
            and isinstance(y_true, torch.Tensor)
            and y_pred.dim() == 2
            and y_true.dim() == 1
            and y_true.shape[0] == y_pred.shape[0]
            and not y_true.is_floating_point()
            and y_true.dtype != torch.bool
            and y_pred.device == self._device
            and y_true.device == self._device
        ):
            # The training hot path: integer labels (N,) against scores (N, C), unweighted. The same
            # sums as the matches' mean (whole numbers, exact in float32), in four kernels.
            buffers = self._buffers
            buffers["total"].add_((y_pred.argmax(dim=-1) == y_true).sum())
            buffers["count"].add_(y_pred.shape[0])
            return
        super().update_state(y_true, y_pred, sample_weight)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is among the top ``k`` predictions.

    Args:
        k: how many of the highest scores count as a hit (default 5).

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: str | torch.dtype | None = None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the top ``k`` predictions.

    Args:
        k: how many of the highest scores count as a hit (default 5).
        from_sorted_ids: ``y_pred`` holds class ids sorted by score, not scores.

    Also takes the arguments of ``Metric``.
    """

    higher_is_better = True

    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: str | torch.dtype | None = None,
        from_sorted_ids: bool = False,
    ):
        super().__init__(
            sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k, from_sorted_ids=from_sorted_ids
        )
