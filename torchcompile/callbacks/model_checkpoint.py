# SPDX-License-Identifier: Apache-2.0
"""ModelCheckpoint: save the model or its weights every epoch or every N batches (Keras).

Owns: filepath templates (`{epoch:02d}-{val_loss:.2f}`; `epoch` and `batch` are 1-based),
save_best_only with a monitor, save_freq counting. Files are written atomically
(saving.py), so a killed process leaves the previous file loadable; under several processes rank 0
writes them (a sharded model's whole state gathered by every process first). Batch logs are device
tensors: they are read (a host sync) only on the batches where a save happens.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping

from torchcompile import saving, sharded_state
from torchcompile.callbacks.monitor import MonitorCallback, to_float
from torchcompile.callbacks.save_frequency import SaveFrequency
from torchcompile.core import process


class ModelCheckpoint(MonitorCallback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) periodically.

    Args:
        filepath: where to save; may hold `str.format` fields filled from `epoch`
            (1-based), `batch` (1-based, when saving every N batches) and the logs, e.g.
            ``"ckpt/{epoch:02d}-{val_loss:.2f}.pt"``.
        monitor: the log key `save_best_only` watches. Defaults to "val_loss".
        verbose: 1 prints a line for each save.
        save_best_only: save only when `monitor` improves; with a fixed filepath only the
            best model is kept.
        save_weights_only: save the state_dict only (``load_weights`` reads it) instead of
            the full model (``tc.load_model`` reads it).
        mode: "auto", "min" or "max" (see `MonitorCallback`).
        save_freq: "epoch", or an integer N to save every N batches.
        initial_value_threshold: the value `monitor` must improve on before the first save.

    Example:
        >>> checkpoint = ModelCheckpoint("best.pt", monitor="val_accuracy", save_best_only=True)
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        self._frequency = SaveFrequency(save_freq)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self._frequency.per_epoch:
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        """Keras' name for the batch count behind ``save_freq``."""
        return self._frequency.due_after_batch(batch)

    def _should_save_model(self, epoch: int, logs: Mapping[str, Any], filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        raw = logs.get(self.monitor)
        current = to_float(raw)
        if raw is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if current is None:
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: {raw}. "
                "Falling back to `save_best_only=False`.",
                stacklevel=3,
            )
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, "
                    f"saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch: int, batch: int | None, logs: Mapping[str, Any] | None) -> None:
        # Several processes: rank 0 decides, saves and prints; the weights are the same everywhere. A sharded
        # model's state is spread over the processes, so every one takes part in gathering it: rank 0's
        # decision (a path, None, or the error to raise) reaches them first.
        sharded = saving.is_sharded(self.model.module)
        if not process.is_rank_zero() and not sharded:
            return
        decision: Any = None
        if process.is_rank_zero():
            try:
                decision = self._path_to_save(epoch, batch, logs)
            except Exception as e:  # noqa: BLE001 - raised below, on every process
                decision = e
        if sharded:
            decision = sharded_state.agree(decision)
        if isinstance(decision, BaseException):
            raise decision
        if decision is None:
            return
        if self.save_weights_only:
            saving.save_weights(self.model, decision)
        else:
            saving.save_model(self.model, decision, epoch=epoch + (1 if batch is None else 0))
        if self.verbose > 0 and process.is_rank_zero():
            print(f"\nEpoch {epoch + 1}: finished saving model to {decision}")

    def _path_to_save(self, epoch: int, batch: int | None, logs: Mapping[str, Any] | None) -> str | None:
        """The file this save writes, or None when ``save_best_only`` skips it."""
        logs = _numbers(logs)  # batch logs are device tensors: one host sync, on save steps only
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used "
                f"is an existing directory. Received: filepath={filepath!r}"
            )
        return filepath if self._should_save_model(epoch, logs, filepath) else None

    def _get_file_path(self, epoch: int, batch: int | None, logs: Mapping[str, Any]) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except (IndexError, ValueError) as e:  # "{}" or "{0}": a positional field, which has no value
            raise ValueError(
                f'The callback filepath "{self.filepath}" has a positional field ({e}); name the field, e.g. '
                f"'{{epoch:02d}}' or '{{val_loss:.2f}}', or write braces as '{{{{' and '}}}}'. "
                f"Received: filepath={self.filepath!r}"
            ) from e
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}. Use fields '
                f"that are in the logs ({sorted(logs)}), `epoch` or `batch`. "
                f"Received: filepath={self.filepath!r}"
            ) from e

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, **self._frequency.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self._frequency.load_state_dict(state)


def _numbers(logs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Scalars as Python floats (for str.format and comparisons); other values unchanged."""
    out = {}
    for key, value in (logs or {}).items():
        number = to_float(value)
        out[key] = number if number is not None else value
    return out
