# SPDX-License-Identifier: Apache-2.0
"""Input checks for losses. Owns: the y_true/y_pred shape rule, the logits check, the sparse label check.

Not: the arithmetic (``functions.py``, ``probabilistic.py``) nor when the checks run (the engine runs
``check_probabilities`` on the first batch and ``check_sparse_labels`` on each CPU batch).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank as keras_squeeze_or_expand

__all__ = [
    "to_tensor_pair",
    "squeeze_or_expand",
    "squeeze_or_expand_sparse",
    "keras_squeeze_or_expand",
    "check_probabilities",
    "check_sparse_labels",
]


def to_tensor_pair(y_true: Any, y_pred: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors on y_pred's device, y_true in y_pred's float dtype, matched by ``squeeze_or_expand``."""
    y_pred = torch.as_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.float()
    y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
    return squeeze_or_expand(y_true, y_pred)


def squeeze_or_expand(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring ``y_true`` and ``y_pred`` to the same rank by Keras' rule, refusing silent broadcasts.

    ``(N,)`` against ``(N, 1)`` is fine. After the rule, the pair must have the same rank and
    ``y_true`` must broadcast to exactly ``y_pred``'s shape (as Keras allows ``(N, 1)`` against
    ``(N, 3)``); anything else, such as ``(N,)`` against ``(N, 3)`` which would broadcast to an
    unrelated matrix, raises.

    Raises:
        ValueError: naming both shapes.
    """
    y_true, y_pred = keras_squeeze_or_expand(y_true, y_pred)
    if y_true.shape == y_pred.shape:
        return y_true, y_pred
    if y_true.dim() == y_pred.dim():
        try:
            if torch.broadcast_shapes(y_true.shape, y_pred.shape) == y_pred.shape:
                return y_true, y_pred
        except RuntimeError:
            pass
    raise ValueError(
        f"y_true and y_pred have shapes that do not match: y_true {tuple(y_true.shape)} against "
        f"y_pred {tuple(y_pred.shape)}. Give y_true the shape of the module's output (a trailing "
        f"dimension of 1 may differ), or use a sparse loss for integer class labels. "
        f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
    )


def squeeze_or_expand_sparse(y_true: torch.Tensor, y_pred: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Class-index ``y_true`` shaped as ``y_pred`` without its class ``axis`` (a trailing 1 is dropped).

    Raises:
        ValueError: naming both shapes when they cannot be matched.
    """
    if y_true.dim() == y_pred.dim() and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    expected = list(y_pred.shape)
    del expected[axis]
    if list(y_true.shape) != expected:
        raise ValueError(
            f"Sparse class labels must have y_pred's shape without the class axis: expected "
            f"y_true of shape {tuple(expected)} (or with a trailing 1) for y_pred of shape "
            f"{tuple(y_pred.shape)}. For one-hot labels use a categorical loss instead. "
            f"Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    return y_true


def check_probabilities(loss: Any, y_pred: torch.Tensor) -> None:
    """Raise if a loss that expects probabilities gets values outside [0, 1].

    Runs once, on the first batch; reading the range is a host sync, paid once.

    Raises:
        ValueError: naming the loss, the range seen and how to fix it.
    """
    if not getattr(loss, "expects_probabilities", False) or not torch.is_tensor(y_pred):
        return
    if y_pred.numel() == 0 or not y_pred.is_floating_point():
        return
    lo, hi = (float(v) for v in torch.aminmax(y_pred.detach()))  # host sync, first batch only
    label = getattr(loss, "display_name", type(loss).__name__)
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(
            f"The first batch of predictions fed to {label} contains NaN, so the loss would be NaN from the "
            "first step. Look for NaN in the inputs (np.isnan(x).any()) or in the module's forward. "
            f"Received: y_pred with {int(torch.isnan(y_pred.detach()).sum())} NaN of {y_pred.numel()} values"
        )
    if lo >= 0.0 and hi <= 1.0:
        return
    fix = getattr(loss, "logits_fix", f"{label}(from_logits=True)")
    end = getattr(loss, "probability_layer", "nn.Sigmoid()")
    raise ValueError(
        f"{label} expects probabilities in [0, 1], but the first batch of predictions spans "
        f"[{lo:.4g}, {hi:.4g}], which looks like logits. Use {fix} or end the module with {end}. "
        f"Received: y_pred.min()={lo:.4g}, y_pred.max()={hi:.4g}"
    )


def check_sparse_labels(loss: Any, y_true: Any, num_classes: int) -> None:
    """Raise if a sparse loss gets labels that are not integers in ``[0, num_classes)``.

    Meant for CPU batches, before they reach the device, so a bad label is a ValueError and
    never a device-side assert. Labels equal to the loss's ``ignore_class`` are skipped.

    Raises:
        ValueError: naming the offending min/max, ``num_classes`` and the fix.
    """
    if not getattr(loss, "sparse_labels", False):
        return
    y_true = torch.as_tensor(y_true)
    if y_true.is_floating_point() and y_true.dim() >= 2 and y_true.shape[-1] == num_classes > 1:
        return  # class probabilities for a torch CrossEntropyLoss, not indices
    ignore = getattr(loss, "ignore_class", None)
    labels = y_true.reshape(-1)
    if ignore is not None:
        labels = labels[labels != ignore]
    if labels.numel() == 0:
        return
    label = getattr(loss, "display_name", type(loss).__name__)
    lo, hi = labels.min().item(), labels.max().item()
    if y_true.is_floating_point() and not bool(torch.all(labels == torch.round(labels))):
        raise ValueError(
            f"{label} expects integer class labels, but y_true holds non-integral values. Pass "
            f"class indices, or use a categorical loss for one-hot or soft labels. "
            f"Received: y_true.dtype={y_true.dtype}, y_true.min()={lo:g}, y_true.max()={hi:g}"
        )
    if lo < 0 or hi >= num_classes:
        raise ValueError(
            f"{label} expects class labels in [0, {num_classes}), but the labels span "
            f"[{lo:g}, {hi:g}]. Give the module's last layer one output per class, or remap the "
            f"labels to 0..{num_classes - 1}. "
            f"Received: y_true.min()={lo:g}, y_true.max()={hi:g}, num_classes={num_classes}"
        )
