# SPDX-License-Identifier: Apache-2.0
"""Steps within an epoch. Owns: `steps_per_epoch`, carrying an iterator across epochs,
and Keras' "ran out of data" warning. Not: making batches (data_adapters.py)."""
from __future__ import annotations

import warnings
from typing import Any, Iterator


class EpochIterator:
    """Yields ``(step, batch)`` for one epoch at a time.

    Without ``steps_per_epoch`` each epoch runs over the whole data. With it, each epoch
    takes that many batches from one iterator that lives across epochs (Keras), so data
    not consumed in one epoch is seen in the next.
    """

    def __init__(self, adapter: Any, steps_per_epoch: int | None = None):
        if steps_per_epoch is not None and (not isinstance(steps_per_epoch, int) or steps_per_epoch < 1):
            raise ValueError("`steps` / `steps_per_epoch` must be a positive integer or None. "
                             f"Received: {steps_per_epoch!r}")
        self.adapter = adapter
        self.steps_per_epoch = steps_per_epoch
        self.ran_out_of_data = False
        self._iterator: Iterator | None = None

    @property
    def num_steps(self) -> int | None:
        return self.steps_per_epoch or self.adapter.num_batches

    def enumerate_epoch(self) -> Iterator[tuple[int, Any]]:
        if self.steps_per_epoch is None:
            step = -1
            for step, batch in enumerate(self.adapter):
                yield step, batch
            if step == -1:
                self._warn_out_of_data()
            return
        for step in range(self.steps_per_epoch):
            batch = self._next_batch(restart_allowed=step == 0)
            if batch is None:
                return
            yield step, batch

    def _next_batch(self, restart_allowed: bool) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.adapter)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
            if restart_allowed and not getattr(self.adapter, "one_shot", False):
                return self._next_batch(restart_allowed=False)
            self._warn_out_of_data()
            return None

    def _warn_out_of_data(self) -> None:
        self.ran_out_of_data = True
        warnings.warn("Your input ran out of data; interrupting training. Make sure that your dataset or "
                      "generator can generate at least `steps_per_epoch * epochs` batches.", stacklevel=4)
