# SPDX-License-Identifier: Apache-2.0
"""Keras' packing of one batch. Owns: ``pack_x_y_sample_weight`` and ``unpack_x_y_sample_weight``.

A step receives ``x`` alone (or ``(x,)`` when ``x`` is itself a tuple or list), ``(x, y)``, or
``(x, y, sample_weight)``, as Keras' ``data_adapter_utils`` packs it.
"""

from __future__ import annotations

from typing import Any


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """What a step receives: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` (Keras)."""
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from a batch, with None for what it lacks (Keras' rule).

    Example:
        >>> unpack_x_y_sample_weight((1, 2))
        (1, 2, None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) == 2:  # the common case first: it runs every step
        return (data[0], data[1], None)
    if len(data) in (1, 3):
        return (*data, *([None] * (3 - len(data))))
    raise ValueError(
        "A batch is x, (x,), (x, y) or (x, y, sample_weight); this one is a tuple of "
        f"{len(data)} elements. Received: data of length {len(data)}"
    )
