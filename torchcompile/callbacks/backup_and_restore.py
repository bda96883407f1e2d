# SPDX-License-Identifier: Apache-2.0
"""BackupAndRestore: resume a killed fit exactly where it stopped, even mid-epoch.

Owns: the backup file and resuming from it. Beyond Keras (which restores weights and the
epoch), one file, ``<backup_dir>/latest.pt``, written atomically, holds everything a
restarted run needs to end with exactly the weights of an uninterrupted one (same seeds,
deterministic kernels): the module's state_dict, the optimizer's state_dict (Keras step
counters, schedules and EMA included), the epoch and the number of its steps already done,
the RNG states (torch, CUDA, NumPy, Python) from right before that epoch's batches were
drawn and from the save point, the running metric states, and the state of every callback
with a ``state_dict`` (EarlyStopping's wait/best, ReduceLROnPlateau's counters,
ModelCheckpoint's counters). Every entry is a tensor or plain data, read back with
``torch.load(weights_only=True)``::

    {"format": "torchcompile.backup", "version": 1, "epoch": int, "step": int,
     "weights": {...}, "optimizer": {...} | None, "rng_epoch": {...}, "rng_step": {...} | None,
     "metrics": [[name, [tensor, ...]], ...] | None, "callbacks": [[class name, {...}], ...],
     "own": {...}}

How the loop takes part (engine/loop.py): fit reads ``initial_epoch`` after
``on_train_begin``; ``run_epoch`` passes each training epoch's batches through
``batches()``, which records (or, after a restart, restores) the RNG state before the
first batch is drawn and skips the steps already done. Exactness needs each epoch to be one
pass over re-iterable data (arrays, a Dataset or a DataLoader without ``steps_per_epoch``
carrying an iterator across epochs); a one-shot generator restarts from its beginning.
"""

from __future__ import annotations

import os
import random
from typing import Any, Iterator

import numpy as np
import torch

from torchcompile import saving
from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.save_frequency import SaveFrequency
from torchcompile.core import process
from torchcompile.engine import distributed, loop

BACKUP_FORMAT = "torchcompile.backup"


def rng_state() -> dict[str, Any]:
    """Every global RNG's state as tensors and plain data (a weights-only file holds it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class BackupAndRestore(Callback):
    """Back up the training state regularly; a restarted ``fit`` resumes from the backup.

    Args:
        backup_dir: the folder for the backup (created if needed).
        save_freq: "epoch" (at the end of every epoch) or an integer N (every N batches,
            counted across epochs; the run then resumes mid-epoch).
        double_checkpoint: also keep the previous backup, used if the latest cannot be read.
        delete_checkpoint: delete the backup when training finishes (an exception leaves it).

    It moves itself to the end of the callback list, so that its backup holds the other
    callbacks' state after they have seen the same batch or epoch.

    Example:
        >>> backup = BackupAndRestore(backup_dir="/tmp/backup", save_freq=100)
        >>> # model.fit(x, y, epochs=10, callbacks=[backup]); kill it; run it again: it resumes.
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"Empty `backup_dir` argument passed. Received: backup_dir={backup_dir!r}")
        self._frequency = SaveFrequency(save_freq)
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._path = os.path.join(self.backup_dir, "latest.pt")
        self._prev_path = self._path + ".bkp"
        self.initial_epoch = 0
        self._reset_counters()
        self._pending: dict | None = None
        self._callbacks: Any = None
        self._rng_epoch: dict | None = None

    def _reset_counters(self) -> None:
        self._frequency.reset()
        self._current_epoch = 0

    # ------------------------------------------------------------ restoring
    def on_train_begin(self, logs=None):
        self._reset_counters()
        self._pending, self.initial_epoch = self._read_backup(), 0
        if self._pending is not None:
            data = self._pending
            saving.load_state_dict(self.model.module, data["weights"], source=repr(self._path))
            if data["optimizer"] is not None and self.model.optimizer is not None:
                self.model.optimizer.load_state_dict(data["optimizer"])
            self.initial_epoch = self._current_epoch = data["epoch"]
            own = data["own"]
            self._frequency.load_state_dict(own)
        self.model._resume_point = self

    def _read_backup(self) -> dict | None:
        for path in (self._path, self._prev_path):
            if not os.path.exists(path):
                continue
            try:
                data = saving.read_file(path, "backup")
            except ValueError:
                if path == self._prev_path or not os.path.exists(self._prev_path):
                    raise
                continue  # the latest backup is unreadable: fall back to the previous one
            if not isinstance(data, dict) or data.get("format") != BACKUP_FORMAT:
                raise ValueError(
                    f"{path!r} is not a BackupAndRestore file; point `backup_dir` at a folder of its "
                    f"own. Received: backup_dir={self.backup_dir!r}"
                )
            return data
        return None

    def batches(self, batches: Iterator, callbacks: Any) -> Iterator:
        """The epoch's ``(step, batch)`` pairs; on the first epoch after a restart, the steps not yet done."""
        self._callbacks = callbacks
        if callbacks is not None and callbacks.callbacks and callbacks.callbacks[-1] is not self:
            callbacks.callbacks.remove(self)
            callbacks.callbacks.append(self)  # save after the others have seen each batch and epoch
        pending, self._pending = self._pending, None
        if pending is None:
            self._rng_epoch = rng_state()
            yield from batches
            return
        self._load_callback_states(pending["callbacks"])
        self._rng_epoch = pending["rng_epoch"]
        set_rng_state(self._rng_epoch)  # the epoch draws its permutation as the killed run did
        skip = pending["step"]
        for step, batch in batches:
            if step < skip:
                if step == skip - 1:
                    self._finish_skip(batch, pending)
                continue
            yield step, batch

    def _finish_skip(self, batch: Any, pending: dict) -> None:
        """After the last step done before the kill: the metric states and RNG state of that moment."""
        model = self.model
        if pending["metrics"] is not None and process.is_rank_zero():  # global sums; the others start at 0
            built = all(part is None or part.built for part in (model._compiled_loss, model._compiled_metrics))
            if not built:
                # The compiled metrics are made on the first batch; one forward in eval mode (no
                # dropout, no BatchNorm update) builds them without changing any weight.
                x, y, _ = model.prepare_batch(batch, "train")
                with loop.mode(model.module, training=False):
                    model._build(y, model.forward(x))
            saved = dict((name, values) for name, values in pending["metrics"])
            for metric in model.metrics:
                for variable, value in zip(getattr(metric, "variables", []), saved.get(metric.name, [])):
                    variable.copy_(value)
        set_rng_state(pending["rng_step"])

    def _load_callback_states(self, states: list) -> None:
        stateful = self._stateful_callbacks()
        for (name, state), callback in zip(states, stateful):
            if type(callback).__name__ == name:
                callback.load_state_dict(state)

    def _stateful_callbacks(self) -> list:
        callbacks = self._callbacks.callbacks if self._callbacks is not None else []
        return [cb for cb in callbacks if cb is not self and callable(getattr(cb, "state_dict", None))]

    # ------------------------------------------------------------ saving
    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._frequency.due_after_batch(batch):
            self._save(epoch=self._current_epoch, step=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._frequency.last_batch = -1
        if self._frequency.per_epoch:
            self._save(epoch=epoch + 1, step=0)

    def _save(self, epoch: int, step: int) -> None:
        model = self.model
        metrics = None
        if step:
            metrics = [[m.name, [v.detach().clone() for v in getattr(m, "variables", [])]] for m in model.metrics]
            if process.is_distributed():  # the backup holds the sums over every process
                distributed.all_reduce_sum([v for _, values in metrics for v in values])
        if not process.is_rank_zero():
            return  # several processes: rank 0 writes the backup; every process reads it on restart
        data = {
            "format": BACKUP_FORMAT,
            "version": 1,
            "epoch": epoch,
            "step": step,
            "weights": model.module.state_dict(),
            "optimizer": model.optimizer.state_dict() if model.optimizer is not None else None,
            "rng_epoch": self._rng_epoch if step else rng_state(),
            "rng_step": rng_state() if step else None,
            "metrics": metrics,
            "callbacks": [[type(cb).__name__, cb.state_dict()] for cb in self._stateful_callbacks()],
            "own": self._frequency.state_dict(),
        }
        if self.double_checkpoint and os.path.exists(self._path):
            with open(self._path, "rb") as f:
                previous = f.read()
            saving.atomic_write(self._prev_path, lambda out: out.write(previous))
        saving.save_file(data, self._path)

    def on_train_end(self, logs=None):
        if self.model is not None and getattr(self.model, "_resume_point", None) is self:
            self.model._resume_point = None
        if not self.delete_checkpoint or not process.is_rank_zero():
            return
        for path in (self._path, self._prev_path):
            if os.path.exists(path):
                os.remove(path)
        if os.path.isdir(self.backup_dir) and not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)
