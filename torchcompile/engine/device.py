# SPDX-License-Identifier: Apache-2.0
"""Device choice and batch transfer. Owns: "auto", pinned non-blocking copies."""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.core.tree import map_structure

CPU = torch.device("cpu")  # the default device of functions that take one


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; refuse a CUDA device that is not there."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'. Received: device={device!r}"
        ) from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "CUDA was requested but torch sees no CUDA device (no GPU, or a CPU build of "
                f"torch). Use device='auto' or 'cpu'. Received: device={device!r}"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"There are {torch.cuda.device_count()} CUDA devices; index {resolved.index} "
                f"does not exist. Received: device={device!r}"
            )
    return resolved


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in ``batch`` to ``device``; pinned and non-blocking on CUDA.

    Tensors already on ``device`` (in-memory arrays sliced there) are returned as is.
    """
    cuda = device.type == "cuda"

    def move(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.device == device:
            return x
        if cuda and x.device.type == "cpu":
            if not x.is_pinned():
                x = x.pin_memory()
            return x.to(device, non_blocking=True)
        return x.to(device)

    return map_structure(move, batch)
