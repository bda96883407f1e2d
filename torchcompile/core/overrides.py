# SPDX-License-Identifier: Apache-2.0
"""One answer to "does this object override that method?". Owns: ``overrides``."""

from __future__ import annotations

from typing import Any


def overrides(obj: Any, base: type, name: str) -> bool:
    """Whether ``obj`` has ``name`` other than as ``base`` defines it: its class redefines it, or
    the object itself holds it (``model.compute_loss = fn``). An object that is not a ``base``
    overrides whatever it has."""
    if name in getattr(obj, "__dict__", ()):
        return True
    own = getattr(type(obj), name, None)
    if own is None:
        return False
    return own is not getattr(base, name, None)
