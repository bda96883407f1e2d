# SPDX-License-Identifier: Apache-2.0
"""Steps within an epoch. Owns: `steps_per_epoch`, carrying an iterator across epochs,
Keras' "ran out of data" warning, and refusing a generator that cannot last the run.
Not: making batches (data_adapters.py)."""

from __future__ import annotations

import warnings
from typing import Any, Iterator


class EpochIterator:
    """Yields ``(step, batch)`` for one epoch at a time.

    Without ``steps_per_epoch`` each epoch runs over the whole data. With it, each epoch
    takes that many batches from one iterator that lives across epochs (Keras), so data
    not consumed in one epoch is seen in the next. When a re-iterable source (arrays, a
    Dataset, a DataLoader) runs out mid-epoch, Keras 3 warns, ends that epoch early and
    starts the next one on a fresh pass. When a one-shot generator runs out, there is no
    more data at all: the warning is given and ``ran_out_of_data`` stops training.

    Args:
        adapter: a data adapter (``data_adapters.get_data_adapter``).
        steps_per_epoch: batches per epoch, or None for one full pass.
        carry_over: keep a partly consumed pass for the next epoch (training, as Keras);
            False starts every epoch on a fresh pass (evaluation, as Keras' reset).
    """

    def __init__(self, adapter: Any, steps_per_epoch: int | None = None, carry_over: bool = True):
        if steps_per_epoch is not None and (
            not isinstance(steps_per_epoch, int) or isinstance(steps_per_epoch, bool) or steps_per_epoch < 1
        ):
            raise ValueError(
                f"`steps` / `steps_per_epoch` must be a positive integer or None. Received: {steps_per_epoch!r}"
            )
        self.adapter = adapter
        self.steps_per_epoch = steps_per_epoch
        self.carry_over = carry_over
        self.ran_out_of_data = False
        self.checked = False  # set by the model once its one-off input checks ran on this data
        self._iterator: Iterator | None = None

    @property
    def num_steps(self) -> int | None:
        return self.steps_per_epoch or self.adapter.num_batches

    @property
    def one_shot(self) -> bool:
        return getattr(self.adapter, "one_shot", False)

    def check_passes(self, passes: int, steps_argument: str, source: str = "x") -> None:
        """Refuse, before any work, a generator without steps that would be read ``passes`` times."""
        if passes > 1 and self.steps_per_epoch is None and self.one_shot:
            raise ValueError(
                f"`{source}` is a generator, which can be read only once, but this run reads it "
                f"{passes} times (once per epoch), so every pass after the first would get no "
                f"data. Pass `{steps_argument}` with a generator that yields enough batches "
                "(an endless one), or data that can be read again (a Dataset, a DataLoader, "
                "or an object whose __iter__ starts a new generator). "
                f"Received: {steps_argument}=None, "
                f"{source} of type {type(self.adapter.data).__name__}"
            )

    def enumerate_epoch(self) -> Iterator[tuple[int, Any]]:
        if self.steps_per_epoch is None:
            step = -1
            for step, batch in enumerate(self.adapter):
                yield step, batch
            if step == -1:
                self._warn_out_of_data(stop=True)
            return
        if not self.carry_over and not self.one_shot:
            self._iterator = None
        for step in range(self.steps_per_epoch):
            batch = self._next_batch(first_step=step == 0)
            if batch is None:
                return
            yield step, batch

    def _next_batch(self, first_step: bool) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.adapter)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = None
        if first_step and not self.one_shot:
            # The previous epoch ended exactly at the end of a pass: start a new one.
            self._iterator = iter(self.adapter)
            batch = next(self._iterator, None)
            if batch is not None:
                return batch
            self._iterator = None
        self._warn_out_of_data(stop=self.one_shot or first_step)
        return None

    def _warn_out_of_data(self, stop: bool) -> None:
        self.ran_out_of_data = self.ran_out_of_data or stop
        warnings.warn(
            "Your input ran out of data; interrupting training. Make sure that your dataset or "
            "generator can generate at least `steps_per_epoch * epochs` batches.",
            stacklevel=4,
        )
