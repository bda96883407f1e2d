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

    {"format": "torchcompile.backup", "version": 2, "epoch": int, "step": int,
     "weights": {...}, "optimizer": {...} | None, "optimizer_class": str | None,
     "rng_epoch": {...}, "rng_step": {...} | None,
     "metrics": [[name, [tensor, ...]], ...] | None, "callbacks": [[class name, {...}], ...],
     "own": {...}}

How fit takes part: it hands this callback its training state (engine/resume.py) through
``set_training_state``; ``on_train_begin`` gives it the backup to resume from, and each save
asks it for the RNG, metric and callback states of that moment. The engine records the RNG
state before each epoch's batches are drawn and, after a restart, skips the steps already
done. Exactness needs each epoch to be one pass over re-iterable data (arrays, a Dataset or
a DataLoader without ``steps_per_epoch`` carrying an iterator across epochs); a one-shot
generator restarts from its beginning.

A restart checks the whole backup before changing anything (format version, weights' keys and
shapes, the optimizer's class and state) and refuses a folder that a live run holds
(callbacks/run_lock.py).
"""

from __future__ import annotations

import os
from typing import Any

from torchcompile import saving
from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.run_lock import RunLock
from torchcompile.callbacks.save_frequency import SaveFrequency
from torchcompile.core import process

BACKUP_FORMAT = "torchcompile.backup"
BACKUP_VERSION = 2  # 2: records the optimizer's class
_NO_TRAINING_STATE = {"rng_epoch": None, "rng_step": None, "metrics": None, "callbacks": []}


class BackupAndRestore(Callback):
    """Back up the training state regularly; a restarted ``fit`` resumes from the backup.

    Args:
        backup_dir: the folder for the backup (created if needed).
        save_freq: "epoch" (at the end of every epoch) or an integer N (every N batches,
            counted across epochs; the run then resumes mid-epoch).
        double_checkpoint: also keep the previous backup, used if the latest cannot be read.
        delete_checkpoint: delete the backup when training finishes (an exception leaves it).

    fit runs it after the other callbacks, so that its backup holds their state after they
    have seen the same batch or epoch.

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
        self._state: Any = None  # fit's engine.resume.TrainingState
        self._lock = RunLock(self.backup_dir)

    def _reset_counters(self) -> None:
        self._frequency.reset()
        self._current_epoch = 0

    def set_training_state(self, state: Any) -> None:
        """fit's hand-off: the RNG, metric and callback states this backup saves and restores."""
        self._state = state

    # ------------------------------------------------------------ restoring
    def on_train_begin(self, logs=None):
        self._reset_counters()
        self.initial_epoch = 0
        if process.is_rank_zero():
            self._lock.acquire()  # before reading: a live run's backup is not ours to resume
        data = self._read_backup()
        if data is None:
            return
        model, source = self.model, repr(self._path)
        optimizer_state = data["optimizer"] if model.optimizer is not None else None
        saving.check_state_dict(model.module, data["weights"], source=source)  # all checks, then any change
        if optimizer_state is not None:
            saving.check_optimizer_state(model.optimizer, optimizer_state, data.get("optimizer_class"), source)
        saving.load_state_dict(model.module, data["weights"], source=source)  # sharded: cut to this process's shards
        if optimizer_state is not None:
            saving.load_optimizer_state(model.optimizer, optimizer_state, data.get("optimizer_class"), source)
        self.initial_epoch = self._current_epoch = data["epoch"]
        self._frequency.load_state_dict(data["own"])
        if self._state is not None:
            snapshot = {k: data[k] for k in ("rng_epoch", "rng_step", "metrics", "callbacks")}
            self._state.resume_from(snapshot, epoch=data["epoch"], step=data["step"])

    def _read_backup(self) -> dict | None:
        for path in (self._path, self._prev_path):
            if not os.path.exists(path):
                continue
            try:
                data = saving.read_file(path, "backup")
                if not isinstance(data, dict) or data.get("format") != BACKUP_FORMAT:
                    raise ValueError(
                        f"{path!r} is not a BackupAndRestore file; point `backup_dir` at a folder of its "
                        f"own. Received: backup_dir={self.backup_dir!r}"
                    )
                saving.check_version(data, BACKUP_VERSION, path, "backup")
            except ValueError:
                if path == self._prev_path or not os.path.exists(self._prev_path):
                    raise
                continue  # the latest backup is unreadable: fall back to the previous one
            return data
        return None

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
        # fit's training state makes the resume exact; called outside fit, the backup holds weights and counters.
        snapshot = self._state.snapshot(step) if self._state is not None else dict(_NO_TRAINING_STATE)
        # Several processes: rank 0 writes the backup; every process reads it on restart. A sharded model's
        # whole state is gathered by every process first (the file is the same as one process writes).
        if not process.is_rank_zero() and not saving.is_sharded(model.module):
            return
        weights, optimizer = saving.model_state(model), saving.optimizer_state(model)
        if not process.is_rank_zero():
            return
        data = {
            "format": BACKUP_FORMAT,
            "version": BACKUP_VERSION,
            "epoch": epoch,
            "step": step,
            "weights": weights,
            "optimizer": optimizer,
            "optimizer_class": saving.optimizer_class_name(model.optimizer) if model.optimizer is not None else None,
            **snapshot,
            "own": self._frequency.state_dict(),
        }
        if self.double_checkpoint and os.path.exists(self._path):
            with open(self._path, "rb") as f:
                previous = f.read()
            saving.atomic_write(self._prev_path, lambda out: out.write(previous))
        saving.save_file(data, self._path)

    def on_train_end(self, logs=None):
        self._state = None
        if not process.is_rank_zero():
            return
        self._lock.release()
        if not self.delete_checkpoint:
            return
        for path in (self._path, self._prev_path):
            if os.path.exists(path):
                os.remove(path)
        if os.path.isdir(self.backup_dir) and not os.listdir(self.backup_dir):
            os.rmdir(self.backup_dir)
