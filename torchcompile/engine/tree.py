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
