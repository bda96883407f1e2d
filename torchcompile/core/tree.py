# SPDX-License-Identifier: Apache-2.0
"""Map and flatten over nested tuple/list/dict structures (Keras' ``tree``)."""

from __future__ import annotations

from typing import Any, Callable


def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """Apply ``fn`` to every leaf, keeping tuples, lists and dicts as they are."""
    if isinstance(structure, dict):
        return {k: map_structure(fn, v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)) and not _is_namedtuple(structure):
        return type(structure)(map_structure(fn, v) for v in structure)
    if _is_namedtuple(structure):
        return type(structure)(*(map_structure(fn, v) for v in structure))
    return fn(structure)


def flatten(structure: Any) -> list[Any]:
    """The leaves of ``structure`` in order (dicts in insertion order)."""
    if isinstance(structure, dict):
        return [leaf for v in structure.values() for leaf in flatten(v)]
    if isinstance(structure, (list, tuple)):
        return [leaf for v in structure for leaf in flatten(v)]
    return [structure]


def is_nested(structure: Any) -> bool:
    return isinstance(structure, (list, tuple, dict))


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def join_structures(parts: list, join_leaves: Callable[[list], Any]) -> Any:
    """Several copies of one structure (per batch, per process) → one, each leaf's copies joined.

    Used by predict (batches concatenated) and the distributed gather (processes merged in order).
    """
    first = parts[0]
    if isinstance(first, dict):
        return {k: join_structures([p[k] for p in parts], join_leaves) for k in first}
    if isinstance(first, (list, tuple)):
        joined = [join_structures([p[i] for p in parts], join_leaves) for i in range(len(first))]
        return type(first)(*joined) if _is_namedtuple(first) else type(first)(joined)
    return join_leaves(parts)
