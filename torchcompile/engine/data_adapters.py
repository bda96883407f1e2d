# SPDX-License-Identifier: Apache-2.0
"""Turns what the user passed to fit/evaluate/predict into batches of ``(x, y, sample_weight)``.

Owns: Keras' dispatch order over input kinds, batching, shuffling, and refusing argument
combinations that would be silently ignored. In-memory arrays (NumPy, tensors, pandas) are
checked once, converted to tensors once and moved to the device once (when they fit), then
sliced there with a per-epoch permutation drawn there; arrays too large for the device stay
on the host and travel as pinned batches; memory-mapped arrays are read batch by batch
(memmap_adapter.py). Datasets (a Hugging Face ``datasets.Dataset`` too), DataLoaders,
PyDatasets (py_dataset_adapter.py) and generators yield CPU batches; `engine/device.py`
moves those.

The caller's data is never written through: every batch handed out is new memory (a
gather, a slice of a gather of several batches, or a contiguous copy of a slice), detached
from any autograd graph. Float inputs
follow ``float_dtype`` (the module's parameter dtype). Conversions, lengths, splits and
class weights live in data_adapter_utils.py, Keras' batch rule in core/batches.py (both re-exported here).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from torchcompile.core.batches import unpack_x_y_sample_weight, yielded_as
from torchcompile.engine import datasets_adapter, memmap_adapter
from torchcompile.engine.array_adapter import ArrayDataAdapter
from torchcompile.engine.data_adapter_utils import (
    check_class_weight,
    check_float_dtype,
    check_lengths,
    class_weight_to_sample_weight,
    is_array_like,
    num_samples,
    slice_tree,
    split_labels,
    to_tensors,
    train_validation_split,
    weights_to_float,
)
from torchcompile.engine.device import CPU
from torchcompile.engine.py_dataset_adapter import PyDatasetBatches, is_py_dataset

__all__ = [
    "ArrayDataAdapter",
    "IterableDataAdapter",
    "accepts_batch_size",
    "check_class_weight",
    "check_lengths",
    "class_weight_to_sample_weight",
    "get_data_adapter",
    "is_array_like",
    "num_samples",
    "slice_tree",
    "split_labels",
    "to_tensors",
    "train_validation_split",
    "unpack_x_y_sample_weight",
    "weights_to_float",
]

DEFAULT_BATCH_SIZE = 32
_EMPTY = object()


class IterableDataAdapter:
    """A DataLoader (used as is), a Dataset (batched here), a PyDataset's batches, or any
    iterable yielding batches.

    A re-iterable source (DataLoader, Dataset, any object whose ``__iter__`` returns a new
    iterator) starts afresh each epoch; a one-shot iterator or generator is consumed across
    epochs, as Keras does. Its first batch is read up front, so an empty generator fails
    before training starts. Batches become tensors as arrays do (float inputs follow
    ``float_dtype``); a dict batch with a ``labels`` key and no ``y`` is split into
    ``(inputs, labels)``. Batches that the source made itself (a generator, a PyDataset) are
    copied when they would otherwise reach the module as the caller's own memory; a
    DataLoader's collated batches are already new. ``shuffle`` applies to a map-style
    Dataset batched here (and to a PyDataset's batch order); a DataLoader keeps its own sampler.
    """

    def __init__(
        self,
        data: Iterable,
        batch_size: int | None,
        shuffle: bool,
        device: torch.device,
        class_weight: Mapping | None = None,
        sharding: Any = None,
        float_dtype: torch.dtype | None = torch.float32,
        collate_fn: Callable | None = None,
    ):
        if _length(data) == 0:
            raise ValueError(f"The input data is empty: {_describe(data)} has no batches. Received: len(x)=0")
        map_style = _is_map_style(data)
        self.sharding = sharding if map_style else None  # a DataLoader or generator yields its own share
        # Batches a DataLoader collates (ours or the user's) are new tensors; a generator's or a
        # PyDataset's may be the caller's own arrays, so those are copied where they would reach the module.
        self.copy_on = None if map_style or isinstance(data, DataLoader) else device
        if map_style:
            datasets_adapter.warn_if_items_are_batches(data)
            kwargs: dict[str, Any] = {"pin_memory": device.type == "cuda"}
            if collate_fn is not None:
                kwargs["collate_fn"] = collate_fn
            if self.sharding is not None:
                size = batch_size or DEFAULT_BATCH_SIZE
                data = DataLoader(data, batch_sampler=self.sharding.batch_sampler(len(data), size, shuffle), **kwargs)
            else:
                data = DataLoader(data, batch_size=batch_size or DEFAULT_BATCH_SIZE, shuffle=shuffle, **kwargs)
        elif isinstance(data, IterableDataset) and not isinstance(data, DataLoader):
            data = DataLoader(data, batch_size=batch_size or DEFAULT_BATCH_SIZE, pin_memory=device.type == "cuda")
        self.data = data
        self.labels = None
        self.class_weight = class_weight
        self.float_dtype = float_dtype
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
        x, y = split_labels(x, y)
        dtype, copy_on = self.float_dtype, self.copy_on
        x, y = to_tensors(x, dtype, copy_on=copy_on), to_tensors(y, dtype, copy_on=copy_on)
        sample_weight = weights_to_float(to_tensors(sample_weight, None, copy_on=copy_on), dtype)
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
        return yielded_as(batch, x, y, sample_weight)  # a step gets [x] back as [x] (Keras)


def _is_map_style(data: Any) -> bool:
    """A Dataset we batch: a torch map-style Dataset or a Hugging Face ``datasets.Dataset``."""
    if isinstance(data, Dataset):
        return not isinstance(data, (DataLoader, IterableDataset))
    return datasets_adapter.is_hf_dataset(data)


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
    float_dtype: torch.dtype | None = torch.float32,
) -> ArrayDataAdapter | IterableDataAdapter:
    """Pick the adapter for ``x`` (Keras' dispatch order) and refuse ignored arguments.

    With arrays and ``steps`` but no ``batch_size``, the batch size is ``ceil(n / steps)`` (Keras).
    ``sharding`` (engine/distributed.py) makes arrays and Datasets yield this process's share.
    ``float_dtype`` is the dtype float inputs and targets take: pass the module's parameter dtype
    (float32 by default; None keeps every array's own dtype).
    """
    check_float_dtype(float_dtype)
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
        x, y = split_labels(x, y)
        adapter = _array_adapter(x, y, sample_weight, batch_size, shuffle, class_weight, device, steps, float_dtype)
        adapter.sharding = sharding
        return adapter
    _refuse_for_iterables(x, y, sample_weight, batch_size)
    if is_py_dataset(x):
        return IterableDataAdapter(PyDatasetBatches(x, shuffle), None, False, device, class_weight, None, float_dtype)
    if datasets_adapter.is_hf_dataset(x):
        x = datasets_adapter.torch_formatted(x)
    return IterableDataAdapter(x, batch_size, shuffle, device, class_weight, sharding, float_dtype)


def _array_adapter(
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    shuffle: bool,
    class_weight: Mapping | None,
    device: torch.device,
    steps: int | None,
    float_dtype: torch.dtype | None = torch.float32,
) -> ArrayDataAdapter | IterableDataAdapter:
    x, y = to_tensors(x, float_dtype, keep_memmaps=True), to_tensors(y, float_dtype, keep_memmaps=True)
    sample_weight = weights_to_float(to_tensors(sample_weight, None, keep_memmaps=True), float_dtype)
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
    if batch_size is None:
        batch_size = math.ceil(n / steps) if steps else DEFAULT_BATCH_SIZE
    if memmap_adapter.has_memmap((x, y, sample_weight)):
        return _memmap_adapter((x, y, sample_weight), n, batch_size, shuffle, class_weight, device, float_dtype)
    if class_weight is not None:
        sample_weight = class_weight_to_sample_weight(y, class_weight)
    return ArrayDataAdapter(x, y, sample_weight, batch_size, shuffle, device)


def _memmap_adapter(
    data: tuple,
    n: int,
    batch_size: int,
    shuffle: bool,
    class_weight: Mapping | None,
    device: torch.device,
    float_dtype: torch.dtype | None,
) -> IterableDataAdapter:
    """Arrays with a memory-mapped leaf: read batch by batch (memmap_adapter.py), never whole.

    Their labels are checked batch by batch, as a Dataset's are; class weights too.
    """
    dataset = memmap_adapter.MemmapBatches(data, n, float_dtype)
    adapter = IterableDataAdapter(
        dataset, batch_size, shuffle, device, class_weight, None, float_dtype, memmap_adapter.collate_batch
    )
    adapter.copy_on = None  # every batch is read into new memory
    return adapter


def _refuse_for_iterables(x: Any, y: Any, sample_weight: Any, batch_size: int | None) -> None:
    kind = _describe(x)
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        if value is not None:
            raise ValueError(
                f"`{name}` cannot be passed separately when x is {kind}, which yields "
                f"its own (x, y, sample_weight) batches; include it in what x yields. "
                f"Received: {name} of type {type(value).__name__}"
            )
    if batch_size is not None and isinstance(x, DataLoader):
        if x.batch_size != batch_size:
            loader_size = "batch_size=None (its own batch_sampler)" if x.batch_size is None else x.batch_size
            raise ValueError(
                f"`batch_size` cannot be used with a DataLoader that batches differently: fit got "
                f"batch_size={batch_size} but the DataLoader's batch size is {loader_size}. Drop "
                f"`batch_size` (the DataLoader's own is used) or build the DataLoader with "
                f"batch_size={batch_size}. Received: batch_size={batch_size}, DataLoader.batch_size={x.batch_size}"
            )
    elif batch_size is not None and not accepts_batch_size(x):
        where = "in the PyDataset's __getitem__" if is_py_dataset(x) else "(DataLoader(batch_size=...))"
        raise ValueError(
            f"`batch_size` cannot be used with {kind}, which already batches its data (Keras "
            f"would silently ignore it); set the batch size where the batches are made "
            f"{where} instead. Received: batch_size={batch_size}"
        )
    if not isinstance(x, (Dataset, Iterable)) and not datasets_adapter.is_hf_dataset(x) or isinstance(x, (str, bytes)):
        raise TypeError(
            "Unrecognised input data: pass NumPy arrays, tensors, pandas DataFrames, lists of numbers, a "
            "Dataset, a DataLoader, a PyDataset or an iterable of batches. "
            f"Received: x of type {type(x).__name__}"
        )


def accepts_batch_size(x: Any) -> bool:
    """Whether ``batch_size`` means something for ``x``: arrays and Datasets we batch ourselves."""
    return is_array_like(x) or _is_map_style(x) or isinstance(x, IterableDataset) and not isinstance(x, DataLoader)


def _describe(x: Any) -> str:
    if isinstance(x, DataLoader):
        return "a DataLoader"
    if is_py_dataset(x):
        return "a PyDataset"
    if isinstance(x, Dataset) or datasets_adapter.is_hf_dataset(x):
        return "a Dataset"
    return "a generator" if isinstance(x, Iterator) else f"an iterable ({type(x).__name__})"
