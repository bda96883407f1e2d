# SPDX-License-Identifier: Apache-2.0
"""One answer to "does this object override that method?". Owns: ``overrides``."""

from __future__ import annotations

from typing import Any


def overrides(obj: Any, base: type, name: str) -> bool:
    """Whether ``type(obj)`` defines ``name`` other than as ``base`` does (an object that is not a
    ``base`` overrides whatever it has)."""
    own = getattr(type(obj), name, None)
    if own is None:
        return False
    return own is not getattr(base, name, None)
