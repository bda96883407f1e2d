# SPDX-License-Identifier: Apache-2.0
"""Tensor helpers every metric uses. Owns: dtype resolution, input conversion without needless
copies, and Keras' ``divide_no_nan``. No function here reads a tensor back to the host.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["as_tensor", "divide_no_nan", "resolve_dtype"]


def resolve_dtype(dtype: str | torch.dtype | None, allow_int: bool = False) -> torch.dtype:
    """``None`` → float32; ``"float64"`` → ``torch.float64``; a ``torch.dtype`` as is.

    Integer dtypes are refused unless ``allow_int`` (count-only state, such as IoU's).
    """
    resolved = (
        torch.float32
        if dtype is None
        else (dtype if isinstance(dtype, torch.dtype) else getattr(torch, str(dtype), None))
    )
    if not isinstance(resolved, torch.dtype) or not (
        resolved.is_floating_point or (allow_int and not resolved.is_complex and resolved != torch.bool)
    ):
        kind = "a floating point or integer" if allow_int else "a floating point"
        raise ValueError(f"A metric's dtype must be {kind} dtype such as 'float32'. Received: dtype={dtype!r}")
    return resolved


def as_tensor(x: Any, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``x`` (tensor, NumPy array, number or list) as a tensor on ``device``.

    A tensor already on ``device`` with the right dtype is returned without a copy, detached:
    metric state never joins the autograd graph of the predictions it is fed.
    """
    if isinstance(x, torch.Tensor):
        if x.requires_grad:
            x = x.detach()
        if x.device != device or (dtype is not None and x.dtype != dtype):
            x = x.to(device=device, dtype=dtype)
        return x  # no no-op detach()/to() calls on the hot path: each costs microseconds per step
    return torch.as_tensor(x, dtype=dtype, device=device)


def divide_no_nan(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x / y`` with 0 where ``y == 0`` (Keras' ``ops.divide_no_nan``)."""
    safe = torch.where(y == 0, torch.ones_like(y), y)
    return torch.where(y == 0, torch.zeros_like(x), x / safe)
