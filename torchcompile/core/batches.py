# SPDX-License-Identifier: Apache-2.0
"""Keras' packing of one batch. Owns: ``pack_x_y_sample_weight``, ``unpack_x_y_sample_weight``,
and the form of a batch that the data yielded as ``[x]`` (``yielded_as``, ``for_step``).

A step receives ``x`` alone (or ``(x,)`` when ``x`` is itself a tuple or list), ``(x, y)``, or
``(x, y, sample_weight)``, as Keras' ``data_adapter_utils`` packs it; a DataLoader or generator
batch ``[x]`` (or ``(x,)``) reaches the step as the data yielded it, as Keras passes it.
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


class _YieldedAsList(tuple):
    """``(x, None, None)`` of a batch the data yielded as ``[x]``."""

    form = list


class _YieldedAsTuple(tuple):
    """``(x, None, None)`` of a batch the data yielded as ``(x,)``."""

    form = tuple


def yielded_as(batch: Any, x: Any, y: Any, sample_weight: Any) -> tuple:
    """``(x, y, sample_weight)``, remembering that ``batch`` was a one-element list or tuple, so that
    ``for_step`` gives the step that form back (the marker survives ``map_structure``)."""
    if y is None and sample_weight is None and type(batch) in (list, tuple) and len(batch) == 1:
        return (_YieldedAsList if type(batch) is list else _YieldedAsTuple)((x, None, None))
    return (x, y, sample_weight)


def for_step(batch: tuple) -> Any:
    """What a step receives for ``(x, y, sample_weight)``: Keras' packing, or ``[x]`` / ``(x,)`` as the
    data yielded it."""
    if type(batch) is _YieldedAsList or type(batch) is _YieldedAsTuple:
        return batch.form((batch[0],))
    return pack_x_y_sample_weight(*batch)
