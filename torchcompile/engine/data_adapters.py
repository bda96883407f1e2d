# SPDX-License-Identifier: Apache-2.0
"""Turns what the user passed to fit/evaluate/predict into batches of ``(x, y, sample_weight)``.

Owns: Keras' dispatch order over input kinds, batching, shuffling, class_weight,
validation_split, and refusing argument combinations that would be silently ignored.
In-memory arrays are checked once, converted to tensors once and moved to the device
once (when they fit), then sliced there with a per-epoch permutation. Datasets,
DataLoaders and generators yield CPU batches; `engine/device.py` moves those.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from torchcompile.engine.device import to_device
from torchcompile.engine.tree import flatten, map_structure

DEFAULT_BATCH_SIZE = 32
# Arrays move to a CUDA device once when they take at most this share of its free memory;
# larger ones stay in (pinned) host memory and travel batch by batch.
DEVICE_MEMORY_SHARE = 0.5


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """Keras' rule for one batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError("A batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
                     f"{len(data)} elements. Received: len(batch)={len(data)}")


def is_array_like(x: Any) -> bool:
    """True for tensors, NumPy arrays, Python lists of numbers and tuples/lists/dicts of those."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return True
    if isinstance(x, Mapping):
        return len(x) > 0 and all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            return False
        if all(isinstance(v, (int, float, bool, np.number)) or _is_number_list(v) for v in x):
            return True
        return all(is_array_like(v) for v in x)
    return False


def _is_number_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        isinstance(e, (int, float, bool, np.number)) or _is_number_list(e) for e in v)


def to_tensors(data: Any) -> Any:
    """Arrays and number lists → tensors; float64 becomes float32 once, float32 is not copied."""
    def convert(leaf: Any) -> Any:
        if leaf is None:
            return None
        if isinstance(leaf, torch.Tensor):
            return leaf.float() if leaf.dtype == torch.float64 else leaf
        array = np.asarray(leaf)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        if array.dtype == object or array.dtype.kind in "USO":
            raise TypeError("Arrays must hold numbers; got an array of dtype "
                            f"{array.dtype}. Convert strings or objects to numbers first. "
                            f"Received: dtype={array.dtype}")
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array).copy()
        return torch.from_numpy(array)

    if isinstance(data, (list, tuple)) and _is_number_list(data):
        return convert(data)
    return map_structure(convert, data)


def num_samples(name: str, data: Any) -> int | None:
    """The common first dimension of every leaf of ``data``; a ValueError if they differ."""
    leaves = [leaf for leaf in flatten(data) if leaf is not None]
    if not leaves:
        return None
    sizes = {int(leaf.shape[0]) if leaf.dim() > 0 else -1 for leaf in leaves}
    if -1 in sizes:
        raise ValueError(f"`{name}` contains a scalar; every array needs a first (sample) dimension. "
                         f"Received: {name} shapes={[tuple(leaf.shape) for leaf in leaves]}")
    if len(sizes) > 1:
        raise ValueError(f"The arrays in `{name}` have different numbers of samples "
                         f"{sorted(sizes)}; they must all have the same first dimension. "
                         f"Received: {name} shapes={[tuple(leaf.shape) for leaf in leaves]}")
    return sizes.pop()


def check_lengths(x: Any, y: Any, sample_weight: Any) -> int:
    """Number of samples, after checking x, y and sample_weight agree and are not empty."""
    n_x = num_samples("x", x)
    counts = {"x": n_x, "y": num_samples("y", y), "sample_weight": num_samples("sample_weight", sample_weight)}
    given = {k: v for k, v in counts.items() if v is not None}
    if len(set(given.values())) > 1:
        detail = ", ".join(f"{k} has {v}" for k, v in given.items())
        raise ValueError(f"x, y and sample_weight must have the same number of samples, but {detail}. "
                         f"Pass arrays of the same length. Received: "
                         + ", ".join(f"len({k})={v}" for k, v in given.items()))
    if not n_x:
        raise ValueError("The input data is empty: fit, evaluate and predict need at least one sample. "
                         f"Received: len(x)={n_x}")
    return n_x


def slice_tree(data: Any, index: Any) -> Any:
    return map_structure(lambda t: None if t is None else t[index], data)


def train_validation_split(arrays: tuple, validation_split: float) -> tuple[tuple, tuple]:
    """Keras' split: the last ``validation_split`` fraction, taken before any shuffling."""
    if not 0.0 < validation_split < 1.0:
        raise ValueError("`validation_split` must be a float in (0, 1). "
                         f"Received: validation_split={validation_split!r}")
    n = num_samples("x", arrays[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"`validation_split`={validation_split} leaves no samples on one side of the split "
                         f"of {n} samples. Use a split that leaves at least one sample for each. "
                         f"Received: validation_split={validation_split}")
    train = tuple(slice_tree(a, slice(0, split_at)) for a in arrays)
    val = tuple(slice_tree(a, slice(split_at, None)) for a in arrays)
    return train, val


def class_weight_to_sample_weight(y: Any, class_weight: Mapping[int, float]) -> torch.Tensor:
    """Keras' class_weight: each sample weighs its class's weight (argmax for one-hot targets)."""
    leaves = [leaf for leaf in flatten(y) if leaf is not None]
    if len(leaves) != 1:
        raise ValueError("`class_weight` needs a single target array; for several outputs pass "
                         f"`sample_weight` instead. Received: {len(leaves)} target arrays")
    labels = leaves[0]
    if labels.dim() > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(dim=-1)
    labels = labels.reshape(labels.shape[0], -1)[:, 0].long()
    present = set(torch.unique(labels).tolist())
    unknown = sorted(set(int(k) for k in class_weight) - set(range(int(max(present)) + 1)))
    if unknown:
        raise ValueError(f"`class_weight` names classes {unknown} that do not occur in y (its classes are "
                         f"0..{int(max(present))}). Use the integer class indices of y as keys. "
                         f"Received: class_weight={dict(class_weight)}")
    table = torch.ones(int(max(max(present), *map(int, class_weight))) + 1)
    for cls, weight in class_weight.items():
        table[int(cls)] = float(weight)
    return table[labels]


class ArrayDataAdapter:
    """In-memory tensors: moved to the device once, then sliced there each epoch.

    Args:
        x, y, sample_weight: tensor trees with a common first dimension.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: draw a new permutation each epoch.
        device: where batches are made.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool,
                 device: torch.device):
        self.num_samples = check_lengths(x, y, sample_weight)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.labels = y  # CPU targets, checked once against the model's outputs
        data = (x, y, sample_weight)
        self.on_device = _fits_on_device(data, device)
        self.device = device if self.on_device else torch.device("cpu")
        self.data = to_device(data, device) if self.on_device else data

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        n, bs = self.num_samples, self.batch_size
        order = torch.randperm(n, device=self.device) if self.shuffle else None
        for start in range(0, n, bs):
            index = slice(start, start + bs) if order is None else order[start:start + bs]
            yield slice_tree(self.data, index)


def _fits_on_device(data: Any, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    nbytes = sum(t.numel() * t.element_size() for t in flatten(data) if t is not None)
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


class IterableDataAdapter:
    """A DataLoader, a Dataset (batched here) or any iterable yielding batches on the CPU.

    A re-iterable source (DataLoader, Dataset, list) starts afresh each epoch; a one-shot
    iterator or generator is consumed across epochs, as Keras does.
    """

    def __init__(self, data: Iterable, batch_size: int | None, shuffle: bool, device: torch.device):
        if isinstance(data, Dataset) and not isinstance(data, DataLoader):
            data = DataLoader(data, batch_size=batch_size or DEFAULT_BATCH_SIZE,
                              shuffle=shuffle and not isinstance(data, IterableDataset),
                              pin_memory=device.type == "cuda")
        self.data = data
        self.labels = None
        self.class_weight: Mapping | None = None
        self.one_shot = isinstance(data, Iterator)
        self._iterator: Iterator | None = None
        try:
            self.num_batches: int | None = len(data)  # type: ignore[arg-type]
        except TypeError:
            self.num_batches = None

    def __iter__(self) -> Iterator[tuple]:
        # A one-shot iterator resumes where the previous epoch stopped.
        for batch in self.data:
            x, y, sample_weight = unpack_x_y_sample_weight(batch)
            if self.class_weight is not None and y is not None:
                weights = class_weight_to_sample_weight(to_tensors(y), self.class_weight)
                sample_weight = weights if sample_weight is None else to_tensors(sample_weight) * weights
            yield x, y, sample_weight


def get_data_adapter(x: Any, y: Any = None, sample_weight: Any = None, batch_size: int | None = None,
                     shuffle: bool = False, class_weight: Mapping | None = None,
                     device: torch.device = torch.device("cpu")) -> ArrayDataAdapter | IterableDataAdapter:
    """Pick the adapter for ``x`` (Keras' dispatch order) and refuse ignored arguments."""
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if x is None:
        raise ValueError("No input data: pass `x` (arrays, a Dataset, a DataLoader or a generator). "
                         "Received: x=None")
    if is_array_like(x):
        x, y, sample_weight = to_tensors(x), to_tensors(y), to_tensors(sample_weight)
        check_lengths(x, y, sample_weight)
        if class_weight is not None:
            weights = class_weight_to_sample_weight(y, class_weight)
            sample_weight = weights if sample_weight is None else sample_weight * weights
        return ArrayDataAdapter(x, y, sample_weight, batch_size or DEFAULT_BATCH_SIZE, shuffle, device)
    kind = _describe(x)
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(f"`{name}` cannot be passed separately when x is {kind}, which yields "
                             f"its own (x, y, sample_weight) batches; include it in what x yields. "
                             f"Received: {name} of type {type(value).__name__}")
    if batch_size is not None and not (isinstance(x, Dataset) and not isinstance(x, DataLoader)):
        raise ValueError(f"`batch_size` cannot be used with {kind}, which already batches its data; set the "
                         f"batch size where the batches are made (DataLoader(batch_size=...)) instead. "
                         f"Received: batch_size={batch_size}")
    if not isinstance(x, (Dataset, Iterable)):
        raise TypeError("Unrecognised input data: pass NumPy arrays, tensors, lists of numbers, a Dataset, "
                        f"a DataLoader or an iterable of batches. Received: x of type {type(x).__name__}")
    adapter = IterableDataAdapter(x, batch_size, shuffle, device)
    adapter.class_weight = class_weight
    return adapter


def _describe(x: Any) -> str:
    if isinstance(x, DataLoader):
        return "a DataLoader"
    if isinstance(x, Dataset):
        return "a Dataset"
    return "a generator" if isinstance(x, Iterator) else f"an iterable ({type(x).__name__})"
