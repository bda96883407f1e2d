# SPDX-License-Identifier: Apache-2.0
"""TerminateOnNaN: stop training when the loss becomes NaN or infinite, naming the batch.

Sync policy. Keras reads the loss every batch. Where the loss lives on the CPU that costs
nothing, and so does this callback: it checks every batch and stops at the batch that went
bad, as Keras does. On an accelerator, reading the loss each batch would stall the device
every step; instead each batch updates, on the device, the index of the first batch whose
(running) loss was not finite, and the host reads that one number every `check_freq`
batches and at the end of each epoch. Training then stops at most `check_freq - 1` batches
late, and the message still names the batch that went bad. The batch loss in the logs is
the epoch's running mean, so it stays non-finite from the first bad batch on.
"""

from __future__ import annotations

import math

import torch

from torchcompile.callbacks.callback import Callback


class TerminateOnNaN(Callback):
    """Stop training (or raise) when the loss is NaN or infinite.

    Args:
        raise_error: raise a RuntimeError instead of stopping gracefully (Keras 3); the
            error skips `on_train_end`, so backups are kept.
        check_freq: on an accelerator, read the device-side flag every this many batches
            (see the module docstring); on the CPU every batch is checked.

    Example:
        >>> callback = TerminateOnNaN()
    """

    def __init__(self, raise_error: bool = False, check_freq: int = 100):
        super().__init__()
        if not isinstance(check_freq, int) or check_freq < 1:
            raise ValueError(f"`check_freq` must be a positive integer. Received: check_freq={check_freq!r}")
        self.raise_error = raise_error
        self.check_freq = check_freq
        self._first_bad: torch.Tensor | None = None
        self._unchecked = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._first_bad, self._unchecked = None, 0

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if self._reads_are_free(loss):
            value = float(loss)  # no device to wait for on the CPU
            if not math.isfinite(value):
                self._terminate(batch, batch, value)
            return
        bad = ~torch.isfinite(loss.detach().reshape(()))
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        self._first_bad = torch.where(bad & (self._first_bad < 0), batch, self._first_bad)
        self._unchecked += 1
        if self._unchecked >= self.check_freq:
            self._check(batch, loss)

    def _reads_are_free(self, loss) -> bool:
        """Whether reading ``loss`` as a number costs no device sync (a Python number or a CPU tensor)."""
        return not isinstance(loss, torch.Tensor) or loss.device.type == "cpu"

    def on_epoch_end(self, epoch, logs=None):
        if self._unchecked and not self.model.stop_training:
            self._check(None, (logs or {}).get("loss"))

    def _check(self, batch: int | None, loss) -> None:
        self._unchecked = 0
        first_bad = int(self._first_bad)  # host sync, once per check_freq batches
        if first_bad >= 0:
            self._terminate(first_bad, batch, float(loss) if loss is not None else float("nan"))

    def _terminate(self, bad_batch: int, seen_at: int | None, value: float) -> None:
        late = (
            ""
            if seen_at == bad_batch
            else (" (noticed at the end of the epoch)" if seen_at is None else f" (noticed at batch {seen_at})")
        )
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {bad_batch}{late}. Loss value: {value}. "
                "Terminating training immediately."
            )
        print(f"Batch {bad_batch}: Invalid loss, terminating training{late}")
        self.model.stop_training = True
