# SPDX-License-Identifier: Apache-2.0
"""Keras' per-sample probabilistic losses in torch: crossentropies, focal crossentropies, KL, Poisson.

Owns: the numerics, which follow Keras 3 on its torch backend (probabilities clipped to
``[1e-7, 1 - 1e-7]``, categorical predictions renormalised along ``axis``, the stable log-softmax /
logits forms when ``from_logits=True``). Not: reductions or sample weights (``loss.py``).
Each function returns per-sample values, one reduction short of the batch loss, as Keras' do.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

from torchcompile.losses.checks import squeeze_or_expand_sparse, to_tensor_pair

__all__ = [
    "EPSILON",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "poisson",
    "sparse_valid_mask",
]

EPSILON = 1e-7  # keras.backend.epsilon()


def _same_shape(y_true: torch.Tensor, y_pred: torch.Tensor, name: str) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name} needs y_true and y_pred of the same shape (one-hot labels for categorical "
            f"losses); for integer class labels use sparse_categorical_crossentropy. "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )


def _elementwise_bce(y_true: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Keras' torch backend: clip, then torch's kernel (unsafe under CUDA autocast, so it is off)."""
    probs = torch.clip(probs, EPSILON, 1.0 - EPSILON)
    with torch.autocast(probs.device.type, enabled=False):
        return F.binary_cross_entropy(probs, y_true.to(probs.dtype), reduction="none")


def _smooth_binary(y_true: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else y_true


def _smooth_categorical(y_true: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if not label_smoothing:
        return y_true
    return y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]


def _normalized_probs(y_pred: torch.Tensor, axis: int) -> torch.Tensor:
    """Predictions divided by their sum along ``axis``, then clipped (Keras' categorical rule)."""
    return torch.clip(y_pred / torch.sum(y_pred, dim=axis, keepdim=True), EPSILON, 1.0 - EPSILON)


def _check_axis(axis: Any, y_pred: torch.Tensor, name: str) -> None:
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"`axis` of {name} must be an int. Received: axis={axis!r}")
    if y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {name}, expected y_pred.shape to be (batch_size, num_classes) with "
            f"num_classes > 1; consider binary_crossentropy for 2 classes. "
            f"Received: y_pred.shape={tuple(y_pred.shape)}",
            SyntaxWarning,
            stacklevel=3,
        )


def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> torch.Tensor:
    """Binary crossentropy, averaged along ``axis`` (Keras' ``binary_crossentropy``).

    Args:
        y_true: labels in [0, 1].
        y_pred: probabilities, or logits with ``from_logits=True``.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: moves labels towards 0.5 by this fraction.
        axis: the axis to average over.

    Example:
        >>> binary_crossentropy([[0.0, 1.0]], [[0.4, 0.6]]).shape
        torch.Size([1])
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    _same_shape(y_true, y_pred, "binary_crossentropy")
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        values = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        values = _elementwise_bce(y_true, y_pred)
    return torch.mean(values, dim=axis)


def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1
) -> torch.Tensor:
    """Crossentropy between one-hot (or soft) labels and predictions along ``axis``.

    Args:
        y_true: one-hot or soft labels, the shape of ``y_pred``.
        y_pred: probabilities (renormalised to sum to 1 along ``axis``), or logits.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: mixes this fraction of a uniform distribution into the labels.
        axis: the class axis.
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    _check_axis(axis, y_pred, "categorical_crossentropy")
    _same_shape(y_true, y_pred, "categorical_crossentropy")
    y_true = _smooth_categorical(y_true, label_smoothing)
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=axis)
    else:
        log_prob = torch.log(_normalized_probs(y_pred, axis))
    return -torch.sum(y_true * log_prob, dim=axis)


def sparse_valid_mask(
    y_true: Any, y_pred: torch.Tensor, ignore_class: int | None, axis: int = -1
) -> torch.Tensor | None:
    """Where the labels differ from ``ignore_class``, shaped like the per-sample loss; or None."""
    if ignore_class is None:
        return None
    y_true = squeeze_or_expand_sparse(torch.as_tensor(y_true, device=y_pred.device), y_pred, axis)
    return y_true != ignore_class


def sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1
) -> torch.Tensor:
    """Crossentropy between integer class labels and predictions along ``axis``.

    Labels must lie in ``[0, num_classes)`` (the engine checks them on the CPU first, see
    ``checks.check_sparse_labels``). Entries labelled ``ignore_class`` give 0; ``Loss`` excludes
    them from the mean, as Keras' mask does.

    Args:
        y_true: class indices, y_pred's shape without ``axis`` (or with a trailing 1).
        y_pred: probabilities (renormalised along ``axis``), or logits.
        from_logits: whether ``y_pred`` holds logits.
        ignore_class: a label whose entries do not count.
        axis: the class axis.
    """
    y_pred = torch.as_tensor(y_pred)
    y_pred = y_pred if y_pred.is_floating_point() else y_pred.float()
    y_true = squeeze_or_expand_sparse(torch.as_tensor(y_true, device=y_pred.device), y_pred, axis)
    y_true = y_true.long()
    valid = None
    if ignore_class is not None:
        valid = y_true != ignore_class
        y_true = torch.where(valid, y_true, 0)
        # Keras zeroes ignored rows; ones keep the (discarded) values finite, so no NaN appears.
        y_pred = torch.where(valid.unsqueeze(axis), y_pred, 1.0)
    squeeze = y_pred.dim() == 1
    if squeeze:
        y_pred, y_true = y_pred.unsqueeze(0), y_true.unsqueeze(0)
    elif axis % y_pred.dim() != 1:
        y_pred = y_pred.movedim(axis % y_pred.dim(), 1)  # torch wants the class dim at 1
    if from_logits:
        values = F.cross_entropy(y_pred, y_true, reduction="none")
    else:
        values = F.nll_loss(torch.log(_normalized_probs(y_pred, 1)), y_true, reduction="none")
    values = values.squeeze(0) if squeeze else values
    return values if valid is None else torch.where(valid, values, 0.0)


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary focal crossentropy (Lin et al., 2017), averaged along ``axis``.

    Args:
        apply_class_balancing: weight positives by ``alpha`` and negatives by ``1 - alpha``.
        alpha: the class-balancing weight.
        gamma: the focusing exponent on ``1 - p_t``.
        from_logits, label_smoothing, axis: as in ``binary_crossentropy``.
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    _same_shape(y_true, y_pred, "binary_focal_crossentropy")
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _elementwise_bce(y_true, y_pred)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal
    return torch.mean(focal, dim=axis)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical focal crossentropy: crossentropy weighted by ``alpha * (1 - p) ** gamma``.

    Args:
        alpha: the weighting factor.
        gamma: the focusing exponent.
        from_logits, label_smoothing, axis: as in ``categorical_crossentropy``.
    """
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    _check_axis(axis, y_pred, "categorical_focal_crossentropy")
    _same_shape(y_true, y_pred, "categorical_focal_crossentropy")
    y_true = _smooth_categorical(y_true, label_smoothing)
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    output = _normalized_probs(y_pred, axis)
    cce = -y_true * torch.log(output)
    return torch.sum(torch.pow(1.0 - output, gamma) * alpha * cce, dim=axis)


def kl_divergence(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``, both clipped to [1e-7, 1]."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    y_true = torch.clip(y_true, EPSILON, 1.0)
    y_pred = torch.clip(y_pred, EPSILON, 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true: Any, y_pred: Any) -> torch.Tensor:
    """Poisson loss ``mean(y_pred - y_true * log(y_pred + 1e-7))`` over the last axis."""
    y_true, y_pred = to_tensor_pair(y_true, y_pred)
    return torch.mean(y_pred - y_true * torch.log(y_pred + EPSILON), dim=-1)
