# SPDX-License-Identifier: Apache-2.0
"""``tc.utils.PyDataset``: Keras 3's batch-returning sequence, for data made by Python code.

Same contract as ``keras.utils.PyDataset`` (and a subclass of Keras' own class is accepted by
fit/evaluate/predict as is): ``__getitem__(i)`` returns batch ``i`` (``x``, ``(x, y)`` or
``(x, y, sample_weight)``), ``__len__`` the number of batches (or override ``num_batches``
and return None for an endless dataset, read with ``steps_per_epoch``), and ``on_epoch_begin``
/ ``on_epoch_end`` run around each pass. ``workers``, ``use_multiprocessing`` and
``max_queue_size`` say how fit reads it: ``workers > 1`` threads (or, with
``use_multiprocessing=True``, worker processes of a torch DataLoader, so the dataset must be
picklable), each keeping up to ``max_queue_size`` batches ready. ``shuffle=True`` in fit
shuffles the order of the batches, as Keras does; what is inside a batch is the dataset's.

Unlike a ``torch.utils.data.Dataset``, whose items are samples that fit batches, a
PyDataset's items are whole batches and are never batched again.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PyDataset"]


class PyDataset:
    """Base class for a dataset that returns whole batches (Keras 3's ``PyDataset``).

    Args:
        workers: how many threads (or processes) read batches in parallel; 1 reads them
            in the training thread.
        use_multiprocessing: read with ``workers`` processes instead of threads.
        max_queue_size: batches kept ready ahead of the training step.

    Example:
        >>> class Squares(PyDataset):
        ...     def __len__(self):
        ...         return 2
        ...     def __getitem__(self, i):
        ...         x = np.arange(4.0, dtype="float32").reshape(4, 1) + 4 * i
        ...         return x, x**2
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    @property
    def workers(self) -> int:
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """Batch number ``index``."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning a batch.")

    @property
    def num_batches(self) -> int | None:
        """Batches per pass (``len(self)``), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)  # type: ignore[arg-type]
        raise NotImplementedError(
            f"{type(self).__name__} must implement __len__ (the number of batches) or the `num_batches` "
            "property (None for an endless dataset)."
        )

    def __iter__(self):
        index = 0
        while self.num_batches is None or index < self.num_batches:
            yield self[index]
            index += 1

    def on_epoch_begin(self) -> None:
        """Called before each pass over the batches."""

    def on_epoch_end(self) -> None:
        """Called after each pass over the batches."""
