# SPDX-License-Identifier: Apache-2.0
"""Memory-mapped NumPy arrays (``np.load(path, mmap_mode="r")``), streamed batch by batch.

Owns: recognising a memory-mapped leaf and reading one batch of its rows into new memory
without mapping the file into the process. Rows are read from the file with ``preadv`` (one
call per run of consecutive rows): pages read through a mapping count in the process's RSS
until unmapped, and a fault on a file kept in large folios maps up to 2 MiB at once, so 512
scattered rows could map a whole 256 MiB file. Reading the file keeps the process at about
one batch, however large the file (the OS page cache still serves a second epoch from memory
when the file fits there). A view that is not row-contiguous in the file, or a mapping whose
file is unknown, is read through the mapping, and its pages are handed back after each
batch (``madvise(MADV_DONTNEED)``). Not: choosing this path (data_adapters.py), the order of
batches (a DataLoader's sampler).
"""

from __future__ import annotations

import mmap
import os
import weakref
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from torchcompile.core.tree import flatten, map_structure


def is_memmap(x: Any) -> bool:
    """A NumPy memmap read from its file: read-only or shared (a copy-on-write ``"c"`` map may hold
    private changes the file does not have, so it is read as an ordinary array)."""
    return isinstance(x, np.memmap) and getattr(x, "_mmap", None) is not None and x.mode != "c"


def has_memmap(data: Any) -> bool:
    return any(is_memmap(leaf) for leaf in flatten(data))


class _FileRows:
    """Where a memmap's rows sit in its file: row ``i`` is ``row_bytes`` at ``start + i * stride``."""

    def __init__(self, leaf: np.memmap):
        self.leaf = leaf
        self.fd: int | None = None
        row = leaf[0] if len(leaf) else None
        row_contiguous = row is None or row.flags.c_contiguous
        if leaf.filename is None or not row_contiguous or leaf.dtype.hasobject:
            return  # read through the mapping (see the module docstring)
        base = np.frombuffer(leaf._mmap, np.uint8, count=1).ctypes.data
        mapped_from = leaf.offset - leaf.offset % mmap.ALLOCATIONGRANULARITY
        self.start = mapped_from + leaf.ctypes.data - base
        self.stride = leaf.strides[0]
        self.row_bytes = leaf.dtype.itemsize * int(np.prod(leaf.shape[1:], dtype=np.int64))
        try:
            self.fd = os.open(leaf.filename, os.O_RDONLY)
        except OSError:
            return
        weakref.finalize(self, os.close, self.fd)  # closed with this reader, at exit at the latest

    def read(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.leaf.shape[1:]), dtype=self.leaf.dtype)
        if self.fd is None:
            out[...] = self.leaf[index]
            release(self.leaf._mmap)
            return out
        flat = out.reshape(len(index), -1).view(np.uint8)
        run_start = 0
        for j in range(1, len(index) + 1):  # one preadv per run of consecutive rows
            if j < len(index) and index[j] == index[j - 1] + 1 and self.stride == self.row_bytes:
                continue
            self._pread(flat[run_start:j], int(index[run_start]))
            run_start = j
        return out

    def _pread(self, rows: np.ndarray, first: int) -> None:
        position, want, done = self.start + first * self.stride, rows.nbytes, 0
        buffer = memoryview(rows.reshape(-1))
        while done < want:  # a read may return less than asked
            got = os.preadv(self.fd, [buffer[done:]], position + done)
            if got <= 0:
                raise OSError(f"Could not read rows of {self.leaf.filename}: the file is shorter than the array.")
            done += got


class MemmapBatches(Dataset):
    """Rows of ``(x, y, sample_weight)`` trees whose leaves are memmaps or tensors.

    A DataLoader with a batch sampler and ``collate_fn=collate_batch`` calls ``__getitems__``
    with one batch's indices; each memmap leaf is read into new memory (float arrays converted
    to ``float_dtype``), each tensor leaf gathered (a copy), so no batch shares memory with the
    caller's arrays.
    """

    def __init__(self, data: tuple, num_samples: int, float_dtype: torch.dtype | None):
        self.data = data
        self.num_samples = num_samples
        self.float_dtype = float_dtype
        self._files = {id(leaf): _FileRows(leaf) for leaf in flatten(data) if is_memmap(leaf)}

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> tuple:
        index = np.asarray(indices, dtype=np.int64)
        return map_structure(lambda leaf: self._read(leaf, index), self.data)

    def _read(self, leaf: Any, index: np.ndarray) -> torch.Tensor | None:
        if leaf is None:
            return None
        if isinstance(leaf, torch.Tensor):
            return leaf.index_select(0, torch.from_numpy(index))  # a copy
        rows = self._files[id(leaf)].read(index)
        if not rows.dtype.isnative:  # a big-endian file: torch takes native byte order only
            rows = rows.astype(rows.dtype.newbyteorder("="))
        tensor = torch.from_numpy(rows)
        if self.float_dtype is not None and tensor.is_floating_point() and tensor.dtype != self.float_dtype:
            tensor = tensor.to(self.float_dtype)
        return tensor


def release(mapping: mmap.mmap) -> None:
    """Unmap the resident pages of ``mapping`` from this process (the file and page cache keep them)."""
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (AttributeError, OSError, ValueError):  # no madvise on this platform, or a closed map
        pass


def collate_batch(batch: Any) -> Any:
    """``MemmapBatches.__getitems__`` already returns the whole batch."""
    return batch
