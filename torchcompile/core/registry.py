# SPDX-License-Identifier: Apache-2.0
"""String identifiers → objects. Owns: lookup, aliases, the "unknown id" error.

One mechanism shared by losses, metrics and optimizers; each namespace keeps its
table as a literal in its ``__init__.py``.
"""

from __future__ import annotations

import difflib
import re
from typing import Any


def to_snake_case(name: str) -> str:
    """``"SparseCategoricalAccuracy"`` → ``"sparse_categorical_accuracy"`` (Keras' rule), for
    default names and the snake_case ids of class names."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class Registry:
    """A read-only table of string identifiers.

    Args:
        kind: what the entries are, for error messages ("loss", "metric", ...).
        entries: identifier → object.
        case_sensitive: whether lookups must match the identifier's case.
    """

    def __init__(self, kind: str, entries: dict[str, Any], *, case_sensitive: bool):
        self.kind = kind
        self.case_sensitive = case_sensitive
        self._entries = dict(entries) if case_sensitive else {k.lower(): v for k, v in entries.items()}

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._key(name) in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def lookup(self, name: str) -> Any:
        """Return the entry for ``name`` or raise a ValueError listing close matches."""
        key = self._key(name)
        if key in self._entries:
            return self._entries[key]
        close = difflib.get_close_matches(key, self._entries, n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        known = ", ".join(sorted(self._entries))
        raise ValueError(
            f"Unknown {self.kind} {name!r}.{hint} Known {self.kind} identifiers: {known}. "
            f"Received: {self.kind}={name!r}"
        )

    def _key(self, name: str) -> str:
        return name if self.case_sensitive else name.lower()
