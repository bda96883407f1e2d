# SPDX-License-Identifier: Apache-2.0
"""In-memory arrays as batches: ``ArrayDataAdapter``.

Owns: moving arrays to the device once (when they fit), a per-epoch permutation drawn there,
gathering shuffled batches several at a time (one gather per chunk, a view per batch), pinned
host batches for arrays too large for the device, and this process's share under several
processes. Every batch is new memory. Not: choosing the adapter (data_adapters.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Callable

import torch

from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine.data_adapter_utils import check_lengths, slice_tree

# Arrays move to a CUDA device once when they take at most this share of its free memory;
# larger ones stay in host memory and travel batch by batch through pinned buffers.
DEVICE_MEMORY_SHARE = 0.5
# Shuffled device arrays are gathered several batches at a time (one gather per chunk, then a view
# per batch): at most this many batches and about this many bytes per chunk.
CHUNK_BATCHES = 8
CHUNK_BYTES = 1 << 20


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
            return t[index].pin_memory() if pin else t[index].clone()
        out = torch.empty((index.numel(), *t.shape[1:]), dtype=t.dtype, pin_memory=pin)
        return torch.index_select(t, 0, index, out=out)

    return map_structure(take, data)


def _chunk_rows(tensors: Any, batch_size: int) -> int:
    """Rows per chunk: up to ``CHUNK_BATCHES`` batches and about ``CHUNK_BYTES``, whole batches."""
    row_bytes = sum(math.prod(t.shape[1:]) * t.element_size() for t in tensors if t is not None)
    return max(1, min(CHUNK_BATCHES, CHUNK_BYTES // max(1, row_bytes * batch_size))) * batch_size


def _gathered_in_chunks(data: tuple, order: torch.Tensor, batch_size: int) -> Iterator[tuple]:
    """Batches of flat ``(x, y, sample_weight)`` in ``order``: rows are gathered a chunk of up to
    ``CHUNK_BATCHES`` batches (and ``CHUNK_BYTES``) at a time, one gather per tensor per chunk, and
    each batch is a slice of its chunk. The same batches as one gather per batch (the boundaries
    fall at multiples of the batch size), in new memory, for fewer ops per step."""
    x, y, sample_weight = data
    per_chunk = _chunk_rows(data, batch_size)
    for chunk_start in range(0, order.shape[0], per_chunk):
        index = order[chunk_start : chunk_start + per_chunk]
        cx = x[index]
        cy = None if y is None else y[index]
        cw = None if sample_weight is None else sample_weight[index]
        for start in range(0, index.shape[0], batch_size):
            end = start + batch_size
            yield cx[start:end], None if cy is None else cy[start:end], None if cw is None else cw[start:end]


def _structures_gathered_in_chunks(data: tuple, order: torch.Tensor, batch_size: int) -> Iterator[tuple]:
    """``_gathered_in_chunks`` for ``(x, y, sample_weight)`` holding structures (a dict of inputs):
    one gather per leaf per chunk, each batch the leaves' slices put back in the structure. (The
    flat case keeps its own loop: three named slices cost less per step than a list and a rebuild.)"""
    leaves = flatten(data)
    per_chunk = _chunk_rows(leaves, batch_size)
    build = _rebuild(data)
    for chunk_start in range(0, order.shape[0], per_chunk):
        index = order[chunk_start : chunk_start + per_chunk]
        chunk = [None if t is None else t[index] for t in leaves]
        for start in range(0, index.shape[0], batch_size):
            end = start + batch_size
            yield build([None if c is None else c[start:end] for c in chunk])


def _rebuild(data: tuple) -> Callable[[list], tuple]:
    """``leaves -> data's structure`` holding them (``flatten``'s order): direct for the usual flat dict
    of inputs, else through ``map_structure``."""
    x, y, sample_weight = data
    leaf = (torch.Tensor, type(None))
    if type(x) is dict and all(isinstance(v, leaf) for v in (*x.values(), y, sample_weight)):
        keys, n = list(x), len(x)
        return lambda parts: (dict(zip(keys, parts)), parts[n], parts[n + 1])

    def through_structure(parts: list) -> tuple:
        remaining = iter(parts)
        return map_structure(lambda _: next(remaining), data)

    return through_structure


def _is_flat(data: tuple) -> bool:
    """Whether ``(x, y, sample_weight)`` are tensors (or None): no structure to walk per batch."""
    x, y, sample_weight = data
    return isinstance(x, torch.Tensor) and all(t is None or isinstance(t, torch.Tensor) for t in (y, sample_weight))


def _rows(data: Any, index: Any) -> Any:
    """Rows ``index`` of every device tensor, in new memory: a slice is copied (contiguous), an
    index tensor gathers (already a copy). The module can then write into its batch freely."""
    if isinstance(index, slice):
        return map_structure(lambda t: None if t is None else t[index].clone(), data)
    return slice_tree(data, index)


class ArrayDataAdapter:
    """In-memory tensors: moved to the device once, then sliced there each epoch.

    When the arrays would take more than ``DEVICE_MEMORY_SHARE`` of the free CUDA memory
    they stay on the host; each batch is gathered into pinned memory and copied
    non-blocking. No per-sample Python work in either case, and every batch is new memory.

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
                yield _rows(self.data, index) if self.on_device else _take(self.data, index, self.pin)
            return
        n, bs = self.num_samples, self.batch_size
        order = torch.randperm(n, device=self.device) if self.shuffle else None
        if order is not None and self.on_device:
            chunks = _gathered_in_chunks if _is_flat(self.data) else _structures_gathered_in_chunks
            yield from chunks(self.data, order, bs)
            return
        for start in range(0, n, bs):
            index = slice(start, start + bs) if order is None else order[start : start + bs]
            if self.on_device:
                yield _rows(self.data, index)
            else:
                yield _take(self.data, index, self.pin)
