# SPDX-License-Identifier: Apache-2.0
"""Map and flatten over nested structures (Keras' ``tree``): tuples, lists, namedtuples, dicts and
dataclasses (a Hugging Face ``ModelOutput`` is a dict)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping tuples, lists, dicts and dataclasses as they are."""
    if isinstance(structure, torch.Tensor) or structure is None:  # the common leaves, first
        return fn(structure)
    if _is_dataclass(structure):
        return type(structure)(**{k: map_structure(fn, v) for k, v in _fields(structure).items()})
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)) and not _is_namedtuple(structure):
        return type(structure)(map_structure(fn, v) for v in structure)
    if _is_namedtuple(structure):
        return type(structure)(*(map_structure(fn, v) for v in structure))
    return fn(structure)


def flatten(structure: Any) -> list[Any]:
    """The leaves of ``structure`` in order (dicts in insertion order, dataclasses in field order)."""
    if isinstance(structure, torch.Tensor):
        return [structure]
    if _is_dataclass(structure):
        return [leaf for v in _fields(structure).values() for leaf in flatten(v)]
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in flatten(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in flatten(v)]
    return [structure]


def is_nested(structure: Any) -> bool:
    return isinstance(structure, (list, tuple, dict))


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _is_dataclass(x: Any) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type) and not isinstance(x, dict)


def _fields(x: Any) -> dict[str, Any]:
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x) if f.init}


def _same_type(first: Any, values: dict[str, Any]) -> Any:
    """``values`` as ``type(first)``: a dict subclass (Hugging Face's ``ModelOutput``) keeps its type."""
    if type(first) is dict:
        return values
    try:
        return type(first)(**values)
    except TypeError:
        return values


def join_structures(parts: list, join_leaves: Callable[[list], Any]) -> Any:
    """Several copies of one structure (per batch, per process) → one, each leaf's copies joined.

    Used by predict (batches concatenated) and the distributed gather (processes merged in order).
    """
    first = parts[0]
    if _is_dataclass(first):
        fields = _fields(first)
        return type(first)(**{k: join_structures([getattr(p, k) for p in parts], join_leaves) for k in fields})
    if isinstance(first, dict):
        return _same_type(first, {k: join_structures([p[k] for p in parts], join_leaves) for k in first})
    if isinstance(first, (list, tuple)):
        joined = [join_structures([p[i] for p in parts], join_leaves) for i in range(len(first))]
        return type(first)(*joined) if _is_namedtuple(first) else type(first)(joined)
    return join_leaves(parts)
