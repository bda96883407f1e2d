# SPDX-License-Identifier: Apache-2.0
"""What every data adapter shares: Keras' batch rule, turning arrays into tensors, lengths, splits,
class weights.

Owns: what counts as an array (NumPy arrays, tensors, pandas DataFrames and Series, Python
lists of numbers, and tuples/lists/dicts of those), the dtype arrays get (float arrays follow
``float_dtype``, the module's parameter dtype; everything else keeps its dtype), detaching
tensors from the caller's graph, the ``labels`` key of a dict batch (the Hugging Face
convention), checking lengths, slicing arrays for ``validation_split`` (engine/validation.py owns the
argument) and ``class_weight``.
Not: batching (data_adapters.py and the adapters it picks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine import memmap_adapter, pandas_adapter

_NUMBER = (int, float, bool, np.number)
LABEL_KEYS = ("labels", "label")  # a dict batch's targets, the Hugging Face way
_NUMPY_DTYPES = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}


def _is_number_list(v: Any) -> bool:
    """A (nested) Python list of numbers: one array, not a structure of inputs."""
    return isinstance(v, list) and len(v) > 0 and all(isinstance(e, _NUMBER) or _is_number_list(e) for e in v)


def is_array_like(x: Any) -> bool:
    """True for tensors, NumPy arrays, pandas objects, lists of numbers and tuples/lists/dicts of those."""
    if isinstance(x, (torch.Tensor, np.ndarray)) or pandas_adapter.is_pandas(x) or _is_number_list(x):
        return True
    if isinstance(x, Mapping):
        return len(x) > 0 and all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(is_array_like(v) for v in x)
    return False


def check_float_dtype(float_dtype: Any) -> torch.dtype | None:
    if float_dtype is not None and not (isinstance(float_dtype, torch.dtype) and float_dtype.is_floating_point):
        raise ValueError(
            "`float_dtype` must be a floating torch.dtype (the module's parameter dtype), e.g. "
            f"torch.float32 or torch.float64. Received: float_dtype={float_dtype!r}"
        )
    return float_dtype


def _to_array(leaf: Any) -> np.ndarray:
    if pandas_adapter.is_pandas(leaf):
        return pandas_adapter.to_numpy(leaf)
    try:
        array = np.asarray(leaf)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            "A list of numbers must be rectangular (every row the same length) to make an "
            f"array. Pad the rows or pass one array per input. Received: {error}"
        ) from error
    if array.dtype == object or array.dtype.kind in "USVMm":
        raise TypeError(
            "Arrays must hold numbers; got an array of dtype "
            f"{array.dtype}. Convert strings or objects to numbers first. "
            f"Received: dtype={array.dtype}"
        )
    return array


def _to_tensor(leaf: Any, float_dtype: torch.dtype | None, keep_memmaps: bool, copy_on: torch.device | None) -> Any:
    if leaf is None:
        return None
    if isinstance(leaf, torch.Tensor):
        tensor = leaf.detach()  # batches are never part of the caller's autograd graph
        if float_dtype is not None and tensor.is_floating_point() and tensor.dtype != float_dtype:
            return tensor.to(float_dtype)
        return tensor.clone() if copy_on is not None and tensor.device.type == copy_on.type else tensor
    if keep_memmaps and memmap_adapter.is_memmap(leaf):
        return leaf  # streamed batch by batch (memmap_adapter.py), never read whole
    array = _to_array(leaf)
    target = _NUMPY_DTYPES.get(float_dtype)  # type: ignore[arg-type]
    if float_dtype is not None and array.dtype.kind == "f" and (target is None or array.dtype != target):
        if target is None:  # bfloat16: NumPy has no such dtype, torch casts
            return torch.from_numpy(np.ascontiguousarray(array) if array.flags.writeable else array.copy()).to(
                float_dtype
            )
        return torch.from_numpy(array.astype(_NUMPY_DTYPES[float_dtype], order="C"))  # one copy, the cast
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)  # a copy
    elif copy_on is not None and copy_on.type == "cpu" or not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def to_tensors(
    data: Any,
    float_dtype: torch.dtype | None = torch.float32,
    keep_memmaps: bool = False,
    copy_on: torch.device | None = None,
) -> Any:
    """Arrays, pandas objects and number lists → tensors, detached from any autograd graph.

    Float arrays become ``float_dtype`` (the module's parameter dtype; None keeps every dtype);
    other dtypes are kept. A writable C-contiguous array that needs no cast is shared, not
    copied; ``copy_on=device`` copies whatever would otherwise share the caller's memory on that
    device (batches handed to the module never do). With ``keep_memmaps``, memory-mapped arrays
    stay as they are, to be streamed.
    """
    if isinstance(data, Mapping):
        return {k: to_tensors(v, float_dtype, keep_memmaps, copy_on) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and not _is_number_list(data):
        return type(data)(to_tensors(v, float_dtype, keep_memmaps, copy_on) for v in data)
    return _to_tensor(data, float_dtype, keep_memmaps, copy_on)


def weights_to_float(sample_weight: Any, float_dtype: torch.dtype | None = torch.float32) -> Any:
    """Integer or boolean sample weights become floats (Keras casts them too): float64 for a float64
    module, else float32."""
    target = torch.float64 if float_dtype == torch.float64 else torch.float32
    return map_structure(lambda t: t if t is None or t.is_floating_point() else t.to(target), sample_weight)


def split_labels(x: Any, y: Any) -> tuple[Any, Any]:
    """A dict ``x`` with a ``labels`` (or ``label``) key and no ``y``: ``(x without it, labels)``.

    The Hugging Face convention for dict batches; any other ``x`` is returned as is.
    """
    if y is not None or not isinstance(x, Mapping):
        return x, y
    key = next((k for k in LABEL_KEYS if k in x), None)
    if key is None:
        return x, y
    rest = {k: v for k, v in x.items() if k != key}
    if not rest:
        raise ValueError(
            f"The dict batch holds only {key!r}: there are no inputs left for the module. Pass the "
            f"inputs beside the labels. Received: x keys={list(x)}"
        )
    return rest, x[key]


def slice_tree(data: Any, index: Any) -> Any:
    """Every tensor of ``data`` indexed along its first dimension (a slice or index tensor)."""
    return map_structure(lambda t: None if t is None else t[index], data)


def num_samples(name: str, data: Any) -> int | None:
    """The common first dimension of every leaf of ``data``; a ValueError if they differ."""
    leaves = [leaf for leaf in flatten(data) if leaf is not None]
    if not leaves:
        return None
    if any(leaf.ndim == 0 for leaf in leaves):
        raise ValueError(
            f"`{name}` contains a scalar; every array needs a first (sample) dimension. "
            f"Received: {name} shapes={[tuple(leaf.shape) for leaf in leaves]}"
        )
    sizes = {int(leaf.shape[0]) for leaf in leaves}  # tensors, or memory-mapped arrays left to stream
    if len(sizes) > 1:
        raise ValueError(
            f"The arrays in `{name}` have different numbers of samples "
            f"{sorted(sizes)}; they must all have the same first dimension. "
            f"Received: {name} shapes={[tuple(leaf.shape) for leaf in leaves]}"
        )
    return sizes.pop()


def check_lengths(x: Any, y: Any, sample_weight: Any, allow_empty: bool = False) -> int:
    """Number of samples, after checking x, y and sample_weight agree and are not empty."""
    counts = {
        "x": num_samples("x", x),
        "y": num_samples("y", y),
        "sample_weight": num_samples("sample_weight", sample_weight),
    }
    given = {k: v for k, v in counts.items() if v is not None}
    if len(set(given.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in given.items())
        raise ValueError(
            f"x, y and sample_weight must have the same number of samples, but {detail}. "
            f"Pass arrays of the same length. Received: " + ", ".join(f"len({k})={v}" for k, v in given.items())
        )
    n_x = counts["x"]
    if not n_x and not allow_empty:
        raise ValueError(
            f"The input data is empty: fit, evaluate and predict need at least one sample. Received: len(x)={n_x}"
        )
    return n_x or 0


def train_validation_split(arrays: tuple, validation_split: float) -> tuple[tuple, tuple]:
    """Keras' split: the last ``validation_split`` fraction, taken before any shuffling (views, no copy)."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError(
            f"`validation_split` must be a float in (0, 1). Received: validation_split={validation_split!r}"
        )
    n = num_samples("x", arrays[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"`validation_split`={validation_split} leaves no samples on one side of the split "
            f"of {n} samples. Use a split that leaves at least one sample for each. "
            f"Received: validation_split={validation_split}"
        )
    train = tuple(slice_tree(a, slice(0, split_at)) for a in arrays)
    val = tuple(slice_tree(a, slice(split_at, None)) for a in arrays)
    return train, val


def check_class_weight(class_weight: Any) -> None:
    """Keys must be class indices (non-negative integers), values numbers."""
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            "`class_weight` must be a dict mapping class indices to weights, e.g. {0: 1.0, 1: 5.0}. "
            f"Received: class_weight of type {type(class_weight).__name__}"
        )
    bad = [k for k in class_weight if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0]
    if bad:
        raise ValueError(
            f"`class_weight` keys must be class indices (integers >= 0); {bad!r} are not. "
            f"Received: class_weight={dict(class_weight)}"
        )


def _class_indices(y: Any) -> tuple[torch.Tensor, int | None]:
    """Per-sample class index (argmax of one-hot rows, rounded labels otherwise) and the one-hot width."""
    leaves = [leaf for leaf in flatten(y) if leaf is not None]
    if len(leaves) != 1:
        raise ValueError(
            "`class_weight` needs a single target array; for several outputs pass "
            f"`sample_weight` instead. Received: {len(leaves)} target arrays"
        )
    labels = leaves[0]
    if labels.dim() > 1 and labels.shape[-1] > 1:  # one-hot (Keras: argmax over the last axis)
        return labels.argmax(dim=-1).reshape(labels.shape[0], -1)[:, 0], int(labels.shape[-1])
    labels = labels.reshape(labels.shape[0], -1)[:, 0]
    return (labels.round() if labels.is_floating_point() else labels).long(), None


def class_weight_to_sample_weight(y: Any, class_weight: Mapping, check_classes: bool = True) -> torch.Tensor:
    """Keras' class_weight: each sample weighs its class's weight; classes not named weigh 1.

    With ``check_classes``, a key naming a class that ``y`` does not have is an error: the
    classes are the one-hot width, else ``0..max(label)`` (at least 0 and 1).
    """
    labels, width = _class_indices(y)
    if check_classes and (width is not None or labels.numel()):
        num_classes = width if width is not None else max(int(labels.max()) + 1, 2)
        unknown = sorted(int(k) for k in class_weight if int(k) >= num_classes)
        if unknown:
            raise ValueError(
                f"`class_weight` names classes {unknown} that do not exist: y has classes "
                f"0..{num_classes - 1}. Use the integer class indices of y as keys. "
                f"Received: class_weight={dict(class_weight)}"
            )
    size = max(int(k) for k in class_weight) + 1 if class_weight else 1
    table = torch.ones(size, device=labels.device)
    for cls, weight in class_weight.items():
        table[int(cls)] = float(weight)
    named = (labels >= 0) & (labels < size)  # other labels (e.g. an ignored -1) weigh 1, as in Keras
    return torch.where(named, table[labels.clamp(0, size - 1)], torch.ones((), device=labels.device))
