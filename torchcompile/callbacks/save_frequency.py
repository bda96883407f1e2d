# SPDX-License-Identifier: Apache-2.0
"""Keras' ``save_freq``, shared by ModelCheckpoint and BackupAndRestore: "epoch", or every
N batches counted across epochs (batch indices restart at 0 each epoch)."""

from __future__ import annotations

from typing import Any


class SaveFrequency:
    """Says after which batches a callback with ``save_freq`` saves.

    Args:
        save_freq: "epoch", or a positive integer N (every N batches).
    """

    def __init__(self, save_freq: str | int):
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ValueError(
                "Invalid value for argument `save_freq`: expected either 'epoch' or a positive "
                f"integer (a number of batches). Received: save_freq={save_freq!r}"
            )
        self.save_freq = save_freq
        self.reset()

    @property
    def per_epoch(self) -> bool:
        return self.save_freq == "epoch"

    def reset(self) -> None:
        self.since_save = 0
        self.last_batch = -1

    def due_after_batch(self, batch: int) -> bool:
        """Count ``batch`` (0-based within its epoch); True when N batches have passed since the last save."""
        if self.per_epoch:
            return False
        self.since_save += batch + 1 if batch <= self.last_batch else batch - self.last_batch
        self.last_batch = batch
        if self.since_save >= self.save_freq:
            self.since_save = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"since_save": self.since_save, "last_batch": self.last_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.since_save, self.last_batch = state["since_save"], state["last_batch"]
