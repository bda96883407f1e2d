# SPDX-License-Identifier: Apache-2.0
"""Keras' way of declaring metric state. Owns: ``StateVariable`` (what ``Metric.add_variable`` returns)
and Keras' initializer names. Not: the buffers themselves (``Metric``, metrics/metric.py).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.metrics.tensors import as_tensor

__all__ = ["StateVariable", "initial_value"]


class StateVariable:
    """A metric state declared with Keras' ``add_variable``: ``assign``, ``assign_add``,
    ``assign_sub`` and ``.value`` over the metric's registered buffer (in place, on its device).

    Use ``.value`` where Keras code uses the variable as a tensor (``return self.total.value``).
    """

    def __init__(self, owner: torch.nn.Module, buffer: str, name: str):
        self._owner, self._buffer, self.name = owner, buffer, name

    @property
    def value(self) -> torch.Tensor:
        return self._owner._buffers[self._buffer]

    @property
    def shape(self) -> torch.Size:
        return self.value.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.value.dtype

    def assign(self, value: Any) -> None:
        self.value.copy_(as_tensor(value, self.value.device, self.value.dtype))

    def assign_add(self, value: Any) -> None:
        self.value.add_(as_tensor(value, self.value.device, self.value.dtype))

    def assign_sub(self, value: Any) -> None:
        self.value.sub_(as_tensor(value, self.value.device, self.value.dtype))

    def numpy(self) -> Any:
        return self.value.detach().cpu().numpy()

    def __repr__(self) -> str:
        return f"<StateVariable {self.name} shape={tuple(self.shape)} dtype={self.dtype}>"


def initial_value(initializer: Any, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """Keras' initializer names ("zeros", "ones"), a number, or a callable ``(shape, dtype)``."""
    if callable(initializer):
        return torch.as_tensor(initializer(shape, dtype=dtype), dtype=dtype)
    if isinstance(initializer, str):
        if initializer.lower() not in ("zeros", "ones"):
            raise ValueError(
                "A metric variable's initializer is 'zeros', 'ones', a number or a callable (shape, dtype). "
                f"Received: initializer={initializer!r}"
            )
        return (torch.zeros if initializer.lower() == "zeros" else torch.ones)(shape, dtype=dtype)
    return torch.full(shape, float(initializer), dtype=dtype)
