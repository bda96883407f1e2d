# SPDX-License-Identifier: Apache-2.0
"""Keras' ``PyDataset`` (``tc.utils.PyDataset`` or a ``keras.utils.PyDataset`` subclass) as a
source of whole batches.

Owns: recognising one (by its class, without importing Keras), checking its ``workers`` /
``use_multiprocessing`` / ``max_queue_size``, the order of batches in a pass (shuffled when
fit shuffles, as Keras), ``on_epoch_begin``/``on_epoch_end`` around each pass, and reading
ahead in threads (``workers > 1``) or in DataLoader worker processes
(``use_multiprocessing=True``). Not: turning batches into tensors (data_adapters.py).
"""

from __future__ import annotations

import collections
import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader


def is_py_dataset(x: Any) -> bool:
    """A subclass of ``tc.utils.PyDataset`` or of Keras' ``PyDataset`` (``keras.utils.Sequence``)."""
    return any(
        cls.__name__ in ("PyDataset", "Sequence") and cls.__module__.split(".")[0] in ("keras", "torchcompile")
        for cls in type(x).__mro__
    )


def _check_settings(dataset: Any) -> tuple[int, bool, int]:
    name = type(dataset).__name__
    workers = getattr(dataset, "workers", 1)
    use_multiprocessing = getattr(dataset, "use_multiprocessing", False)
    max_queue_size = getattr(dataset, "max_queue_size", 10)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(
            f"{name}.workers must be an integer >= 0 (1 reads batches in the training thread). "
            f"Received: workers={workers!r}"
        )
    if not isinstance(use_multiprocessing, bool):
        raise ValueError(f"{name}.use_multiprocessing must be True or False. Received: {use_multiprocessing!r}")
    if not isinstance(max_queue_size, int) or isinstance(max_queue_size, bool) or max_queue_size < 1:
        raise ValueError(
            f"{name}.max_queue_size must be a positive integer (batches kept ready). "
            f"Received: max_queue_size={max_queue_size!r}"
        )
    return workers, use_multiprocessing, max_queue_size


def _num_batches(dataset: Any) -> int | None:
    try:
        count = dataset.num_batches if hasattr(type(dataset), "num_batches") else len(dataset)
    except (NotImplementedError, TypeError) as error:
        raise ValueError(
            f"{type(dataset).__name__} must implement __len__ (its number of batches) or a `num_batches` "
            f"property (None for an endless dataset). Received: {error}"
        ) from error
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise ValueError(
            f"{type(dataset).__name__}'s number of batches must be an integer >= 0 or None. Received: {count!r}"
        )
    return count


class PyDatasetBatches:
    """One pass over a PyDataset's batches per ``iter()`` (re-iterable, so each epoch starts afresh).

    Args:
        dataset: the PyDataset.
        shuffle: visit the batches in a new random order each pass (Keras' PyDatasetAdapter).
    """

    def __init__(self, dataset: Any, shuffle: bool):
        self.dataset = dataset
        self.shuffle = shuffle
        self.workers, self.use_multiprocessing, self.max_queue_size = _check_settings(dataset)
        self.num_batches = _num_batches(dataset)

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless PyDataset has no length")
        return self.num_batches

    def _order(self) -> Iterator[int]:
        if self.num_batches is None:
            return itertools.count()
        if self.shuffle:
            return iter(torch.randperm(self.num_batches).tolist())  # torch's RNG, so torch.manual_seed repeats it
        return iter(range(self.num_batches))

    def __iter__(self) -> Iterator[Any]:
        self.dataset.on_epoch_begin()
        order = self._order()
        if self.use_multiprocessing and self.workers > 0:
            batches = self._processes(order)
        elif self.workers > 1:
            batches = self._threads(order)
        else:
            batches = (self.dataset[i] for i in order)
        yield from batches
        self.dataset.on_epoch_end()  # only after a full pass; a pass cut short by steps_per_epoch continues

    def _threads(self, order: Iterator[int]) -> Iterator[Any]:
        pending: collections.deque = collections.deque()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tc-pydataset")
        try:
            for index in itertools.islice(order, self.max_queue_size):
                pending.append(pool.submit(self.dataset.__getitem__, index))
            while pending:
                batch = pending.popleft().result()
                for index in itertools.islice(order, 1):
                    pending.append(pool.submit(self.dataset.__getitem__, index))
                yield batch
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _processes(self, order: Iterator[int]) -> Iterator[Any]:
        # A DataLoader over batch indices with batch_size=None: each worker process returns whole
        # batches, up to max_queue_size of them ready in all.
        loader = DataLoader(
            self.dataset,
            batch_size=None,
            sampler=list(order) if self.num_batches is not None else order,
            num_workers=self.workers,
            prefetch_factor=max(1, math.ceil(self.max_queue_size / self.workers)),
            collate_fn=_as_is,
        )
        yield from loader


def _as_is(batch: Any) -> Any:
    """A module-level identity (worker processes pickle it)."""
    return batch
