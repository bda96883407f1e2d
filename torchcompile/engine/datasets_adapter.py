# SPDX-License-Identifier: Apache-2.0
"""Datasets batched by fit: a Hugging Face ``datasets.Dataset``, and a torch Dataset whose items look
like whole batches.

Owns: recognising a ``datasets.Dataset`` without importing ``datasets`` (by its type's module),
giving it the torch format and refusing text columns, and the warning for a torch Dataset
whose items are already batches (Keras' batch-returning sequence ported as a Dataset), which
fit would batch again. Not: the batching itself (data_adapters.py).
"""

from __future__ import annotations

import warnings
from typing import Any

from torchcompile.core.tree import flatten


def is_hf_dataset(x: Any) -> bool:
    """A Hugging Face ``datasets.Dataset`` (recognised by module name; ``datasets`` is never imported)."""
    return type(x).__module__.startswith("datasets.") and hasattr(x, "with_format") and hasattr(x, "__len__")


def torch_formatted(x: Any) -> Any:
    """A ``datasets.Dataset`` formatted to give tensors (``with_format("torch")`` when it has no
    format: a view, no copy); text columns are refused, naming them."""
    if x.format.get("type") is None:
        x = x.with_format("torch")
    text = [name for name in x.format.get("columns") or x.column_names if _is_text(x.features.get(name))]
    if text:
        raise TypeError(
            f"The datasets.Dataset columns {text} hold strings, which cannot become tensors. Tokenize "
            f"them into new columns and drop them (`ds.remove_columns({text!r})`), or choose the "
            "columns that batches carry (`ds.with_format('torch', columns=[...])`). "
            f"Received: columns={x.column_names}"
        )
    return x


def _is_text(feature: Any) -> bool:
    while feature is not None:
        if getattr(feature, "dtype", None) in ("string", "large_string"):
            return True
        feature = getattr(feature, "feature", None)  # a Sequence / List of values
    return False


def warn_if_items_are_batches(dataset: Any) -> None:
    """Warn when a Dataset's item looks like a whole batch (Keras' batch-returning sequence ported to a
    torch Dataset): float x of rank >= 2 with a y of the same leading length. Such items would be
    batched again into one step of shape (batch_size, n, ...)."""
    try:
        item = dataset[0]
    except Exception:  # an item that cannot be read here fails, with its own error, in the first batch
        return
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        return
    x_leaves, y_leaves = flatten(item[0]), flatten(item[1])
    x0 = next((leaf for leaf in x_leaves if hasattr(leaf, "shape")), None)
    y0 = next((leaf for leaf in y_leaves if hasattr(leaf, "shape")), None)
    if x0 is None or y0 is None or len(x0.shape) < 2 or len(y0.shape) < 1:
        return
    floating = getattr(x0, "is_floating_point", None)
    is_float = floating() if callable(floating) else getattr(getattr(x0, "dtype", None), "kind", "") == "f"
    if is_float and x0.shape[0] == y0.shape[0] > 1:
        warnings.warn(
            f"The items of {type(dataset).__name__} look like whole batches (x {tuple(x0.shape)} with y "
            f"{tuple(y0.shape)}), but a torch Dataset's items are samples, so they are batched again into "
            f"steps of (batch_size, {x0.shape[0]}, ...). If each item is a batch, subclass "
            "tc.utils.PyDataset instead (Keras' batch-returning sequence), or pass "
            "DataLoader(dataset, batch_size=None). If each item is one sample (a sequence), pass "
            "DataLoader(dataset, batch_size=...) to batch it without this check.",
            stacklevel=5,
        )
