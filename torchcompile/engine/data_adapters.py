# SPDX-License-Identifier: Apache-2.0
"""Turns what the user passed to fit/evaluate/predict into batches of ``(x, y, sample_weight)``.

Owns: Keras' dispatch order over input kinds, batching, shuffling, class_weight,
validation_split, and refusing argument combinations that would be silently ignored.
In-memory arrays are checked once, converted to tensors once and moved to the device
once (when they fit), then sliced there with a per-epoch permutation drawn there; arrays
too large for the device stay on the host and travel as pinned batches. Datasets,
DataLoaders and generators yield CPU batches; `engine/device.py` moves those.

What counts as arrays: NumPy arrays, tensors, a Python list of numbers (nested lists
make one array), and tuples, lists or dicts of those (several inputs or outputs). A list
whose items are arrays is a structure; a list whose items are numbers is one array.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from torchcompile.core.tree import flatten, map_structure

DEFAULT_BATCH_SIZE = 32
# Arrays move to a CUDA device once when they take at most this share of its free memory;
# larger ones stay in host memory and travel batch by batch through pinned buffers.
DEVICE_MEMORY_SHARE = 0.5
_NUMBER = (int, float, bool, np.number)
_EMPTY = object()

CPU = torch.device("cpu")


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
    raise ValueError(
        "A batch must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
        f"{len(data)} elements. Received: len(batch)={len(data)}"
    )


def _is_number_list(v: Any) -> bool:
    """A (nested) Python list of numbers: one array, not a structure of inputs."""
    return isinstance(v, list) and len(v) > 0 and all(isinstance(e, _NUMBER) or _is_number_list(e) for e in v)


def is_array_like(x: Any) -> bool:
    """True for tensors, NumPy arrays, Python lists of numbers and tuples/lists/dicts of those."""
    if isinstance(x, (torch.Tensor, np.ndarray)) or _is_number_list(x):
        return True
    if isinstance(x, Mapping):
        return len(x) > 0 and all(is_array_like(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(is_array_like(v) for v in x)
    return False


def _to_tensor(leaf: Any) -> Any:
    if leaf is None:
        return None
    if isinstance(leaf, torch.Tensor):
        return leaf.float() if leaf.dtype == torch.float64 else leaf
    try:
        array = np.asarray(leaf)
    except ValueError as error:  # ragged nested lists
        raise ValueError(
            "A list of numbers must be rectangular (every row the same length) to make an "
            f"array. Pad the rows or pass one array per input. Received: {error}"
        ) from error
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(
            "Arrays must hold numbers; got an array of dtype "
            f"{array.dtype}. Convert strings or objects to numbers first. "
            f"Received: dtype={array.dtype}"
        )
    if array.dtype == np.float64:
        array = array.astype(np.float32)  # once, here; float32 arrays are shared, not copied
    elif not array.flags.writeable or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array).copy()
    return torch.from_numpy(array)


def to_tensors(data: Any) -> Any:
    """Arrays and number lists → tensors; float64 becomes float32 once, float32 is not copied."""
    if isinstance(data, Mapping):
        return {k: to_tensors(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)) and not _is_number_list(data):
        return type(data)(to_tensors(v) for v in data)
    return _to_tensor(data)


def weights_to_float(sample_weight: Any) -> Any:
    """Integer or boolean sample weights become float32 (Keras casts them too)."""
    return map_structure(lambda t: t if t is None or t.is_floating_point() else t.float(), sample_weight)


def slice_tree(data: Any, index: Any) -> Any:
    """Every tensor of ``data`` indexed along its first dimension (a slice or index tensor)."""
    return map_structure(lambda t: None if t is None else t[index], data)


def num_samples(name: str, data: Any) -> int | None:
    """The common first dimension of every leaf of ``data``; a ValueError if they differ."""
    leaves = [leaf for leaf in flatten(data) if leaf is not None]
    if not leaves:
        return None
    if any(leaf.dim() == 0 for leaf in leaves):
        raise ValueError(
            f"`{name}` contains a scalar; every array needs a first (sample) dimension. "
            f"Received: {name} shapes={[tuple(leaf.shape) for leaf in leaves]}"
        )
    sizes = {int(leaf.shape[0]) for leaf in leaves}
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


def _fits_on_device(data: Any, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    nbytes = sum(t.numel() * t.element_size() for t in flatten(data) if t is not None)
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_MEMORY_SHARE * free


def _take(data: Any, index: Any, pin: bool) -> Any:
    """Gather rows ``index`` of every host tensor straight into (pinned, when ``pin``) new memory."""

    def take(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        if isinstance(index, slice):
            return t[index].pin_memory() if pin else t[index]
        out = torch.empty((index.numel(), *t.shape[1:]), dtype=t.dtype, pin_memory=pin)
        return torch.index_select(t, 0, index, out=out)

    return map_structure(take, data)


class ArrayDataAdapter:
    """In-memory tensors: moved to the device once, then sliced there each epoch.

    When the arrays would take more than ``DEVICE_MEMORY_SHARE`` of the free CUDA memory
    they stay on the host; each batch is gathered into pinned memory and copied
    non-blocking. No per-sample Python work in either case.

    Args:
        x, y, sample_weight: tensor trees with a common first dimension.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: draw a new permutation each epoch (on the device holding the data).
        device: where batches are consumed.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int, shuffle: bool, device: torch.device):
        self.num_samples = check_lengths(x, y, sample_weight)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.labels = y  # host targets, checked once against the model's outputs
        self.sharding: Any = None  # under several processes, this one's share (engine/distributed.py)
        data = (x, y, sample_weight)
        self.on_device = _fits_on_device(data, device)
        self.device = device if self.on_device else torch.device("cpu")
        self.pin = not self.on_device and device.type == "cuda"
        # One host-to-device copy per adapter; a plain copy, since pinning first would double host memory.
        self.data = map_structure(lambda t: None if t is None else t.to(device), data) if self.on_device else data

    @property
    def num_batches(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        if self.sharding is not None:  # this process's share of each global batch
            for index in self.sharding.batches(self.num_samples, self.batch_size, self.shuffle, self.device):
                yield slice_tree(self.data, index) if self.on_device else _take(self.data, index, self.pin)
            return
        n, bs = self.num_samples, self.batch_size
        order = torch.randperm(n, device=self.device) if self.shuffle else None
        for start in range(0, n, bs):
            index = slice(start, start + bs) if order is None else order[start : start + bs]
            if self.on_device:
                yield slice_tree(self.data, index)
            else:
                yield _take(self.data, index, self.pin)


class IterableDataAdapter:
    """A DataLoader (used as is), a Dataset (batched here) or any iterable yielding batches.

    A re-iterable source (DataLoader, Dataset, any object whose ``__iter__`` returns a new
    iterator) starts afresh each epoch; a one-shot
    iterator or generator is consumed across epochs, as Keras does. Its first batch is read
    up front, so an empty generator fails before training starts. NumPy batches become
    tensors and float64 becomes float32, as for arrays. ``shuffle`` applies only to a
    map-style Dataset batched here; a DataLoader keeps its own sampler.
    """

    def __init__(
        self,
        data: Iterable,
        batch_size: int | None,
        shuffle: bool,
        device: torch.device,
        class_weight: Mapping | None = None,
        sharding: Any = None,
    ):
        if _length(data) == 0:
            raise ValueError(f"The input data is empty: {_describe(data)} has no batches. Received: len(x)=0")
        map_style = isinstance(data, Dataset) and not isinstance(data, (DataLoader, IterableDataset))
        self.sharding = sharding if map_style else None  # a DataLoader or generator yields its own share
        if self.sharding is not None:
            data = DataLoader(
                data,
                batch_sampler=self.sharding.batch_sampler(len(data), batch_size or DEFAULT_BATCH_SIZE, shuffle),
                pin_memory=device.type == "cuda",
            )
        elif isinstance(data, Dataset) and not isinstance(data, DataLoader):
            data = DataLoader(
                data,
                batch_size=batch_size or DEFAULT_BATCH_SIZE,
                shuffle=shuffle and not isinstance(data, IterableDataset),
                pin_memory=device.type == "cuda",
            )
        self.data = data
        self.labels = None
        self.class_weight = class_weight
        self.one_shot = isinstance(data, Iterator)
        self._peeked: list = []
        self.num_batches = _length(data)
        if self.one_shot:
            self._peeked = [next(data, _EMPTY)]
            if self._peeked[0] is _EMPTY:
                raise ValueError(
                    "The input data is empty: the generator yielded no batch. Pass a generator "
                    "that yields (x, y) or (x, y, sample_weight) batches. Received: an empty "
                    f"{type(data).__name__}"
                )

    def __iter__(self) -> Iterator[tuple]:
        # A one-shot iterator resumes where the previous epoch stopped.
        source = itertools.chain([self._peeked.pop()], self.data) if self._peeked else self.data
        for batch in source:
            yield self._standardize(batch)

    def _standardize(self, batch: Any) -> tuple:
        x, y, sample_weight = unpack_x_y_sample_weight(batch)
        x, y, sample_weight = to_tensors(x), to_tensors(y), weights_to_float(to_tensors(sample_weight))
        check_lengths(x, y, sample_weight, allow_empty=True)
        if self.class_weight is not None and y is not None:
            if sample_weight is not None:
                raise ValueError(
                    "The data yields sample weights and `class_weight` was given; pass one or "
                    "the other, as Keras does. Received: class_weight="
                    f"{dict(self.class_weight)} and batches of (x, y, sample_weight)"
                )
            # Sparse labels cannot be checked against the class count from one batch.
            sample_weight = class_weight_to_sample_weight(y, self.class_weight, check_classes=False)
        return x, y, sample_weight


def _length(data: Any) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:  # an IterableDataset or generator: unknown until read
        return None


def get_data_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: int | None = None,
    shuffle: bool = False,
    class_weight: Mapping | None = None,
    device: torch.device = CPU,
    steps: int | None = None,
    sharding: Any = None,
) -> ArrayDataAdapter | IterableDataAdapter:
    """Pick the adapter for ``x`` (Keras' dispatch order) and refuse ignored arguments.

    With arrays and ``steps`` but no ``batch_size``, the batch size is ``ceil(n / steps)`` (Keras).
    ``sharding`` (engine/distributed.py) makes arrays and Datasets yield this process's share.
    """
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if x is None:
        raise ValueError("No input data: pass `x` (arrays, a Dataset, a DataLoader or a generator). Received: x=None")
    if isinstance(x, (list, tuple, Mapping)) and len(x) == 0:
        raise ValueError(
            f"The input data is empty: fit, evaluate and predict need at least one sample. Received: x={x!r}"
        )
    if class_weight is not None:
        check_class_weight(class_weight)
    if is_array_like(x):
        adapter = _array_adapter(x, y, sample_weight, batch_size, shuffle, class_weight, device, steps)
        adapter.sharding = sharding
        return adapter
    _refuse_for_iterables(x, y, sample_weight, batch_size)
    return IterableDataAdapter(x, batch_size, shuffle, device, class_weight, sharding=sharding)


def _array_adapter(
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    shuffle: bool,
    class_weight: Mapping | None,
    device: torch.device,
    steps: int | None,
) -> ArrayDataAdapter:
    x, y, sample_weight = to_tensors(x), to_tensors(y), weights_to_float(to_tensors(sample_weight))
    n = check_lengths(x, y, sample_weight)
    if class_weight is not None:
        if sample_weight is not None:
            raise ValueError(
                "Pass either `sample_weight` or `class_weight`, not both (Keras refuses the "
                "pair too); fold the class weights into sample_weight instead. "
                f"Received: class_weight={dict(class_weight)} and a sample_weight array"
            )
        if y is None:
            raise ValueError(
                "`class_weight` weighs samples by their class in `y`, but no `y` was given. "
                f"Pass y=... Received: class_weight={dict(class_weight)}, y=None"
            )
        sample_weight = class_weight_to_sample_weight(y, class_weight)
    if batch_size is None:
        batch_size = math.ceil(n / steps) if steps else DEFAULT_BATCH_SIZE
    return ArrayDataAdapter(x, y, sample_weight, batch_size, shuffle, device)


def _refuse_for_iterables(x: Any, y: Any, sample_weight: Any, batch_size: int | None) -> None:
    kind = _describe(x)
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"`{name}` cannot be passed separately when x is {kind}, which yields "
                f"its own (x, y, sample_weight) batches; include it in what x yields. "
                f"Received: {name} of type {type(value).__name__}"
            )
    if batch_size is not None and not accepts_batch_size(x):
        raise ValueError(
            f"`batch_size` cannot be used with {kind}, which already batches its data (Keras "
            f"would silently ignore it); set the batch size where the batches are made "
            f"(DataLoader(batch_size=...)) instead. Received: batch_size={batch_size}"
        )
    if not isinstance(x, (Dataset, Iterable)) or isinstance(x, (str, bytes)):
        raise TypeError(
            "Unrecognised input data: pass NumPy arrays, tensors, lists of numbers, a Dataset, "
            f"a DataLoader or an iterable of batches. Received: x of type {type(x).__name__}"
        )


def accepts_batch_size(x: Any) -> bool:
    """Whether ``batch_size`` means something for ``x``: arrays and Datasets we batch ourselves."""
    return is_array_like(x) or (isinstance(x, Dataset) and not isinstance(x, DataLoader))


def _describe(x: Any) -> str:
    if isinstance(x, DataLoader):
        return "a DataLoader"
    if isinstance(x, Dataset):
        return "a Dataset"
    return "a generator" if isinstance(x, Iterator) else f"an iterable ({type(x).__name__})"
