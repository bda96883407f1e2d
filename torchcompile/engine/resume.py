# SPDX-License-Identifier: Apache-2.0
"""Exact resume: the engine's half of ``BackupAndRestore``.

Owns: the RNG states (captured before each training epoch draws its batches, and at a
save point), skipping the steps a killed run had done, and restoring the running metric
states and other callbacks' states at that point. Not: when or where a backup is written,
nor the weights and optimizer state (the callback, callbacks/backup_and_restore.py).
Gradients accumulated towards the next update (``gradient_accumulation_steps``) are optimizer
state, as Keras keeps them: they travel in ``optimizer.state_dict()`` (engine/accumulation.py);
under several processes ``snapshot`` first gathers every process's running sums into it.

The hand-off is public and duck-typed: fit gives a ``TrainingState`` to every callback that
has ``set_training_state(state)``; such a callback calls ``state.snapshot(step)`` to get what a
backup needs and ``state.resume_from(snapshot, epoch)`` before the first epoch to resume.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

import numpy as np
import torch

from torchcompile.core import process
from torchcompile.engine import distributed
from torchcompile.engine.device import to_device
from torchcompile.engine.loop import mode


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


class TrainingState:
    """What a backup holds beyond weights and optimizer state, for one fit.

    Args:
        model: the model being fitted (its ``metrics``, ``predict_step`` and ``module``).
        compiled: its compile state (to build the loss and metrics before restoring them).
        callbacks: the fit's callbacks; those with ``state_dict``/``load_state_dict`` are saved
            and restored (EarlyStopping's wait and best, ReduceLROnPlateau's counters, ...).
    """

    def __init__(self, model: Any, compiled: Any, callbacks: Any):
        self.model, self.compiled, self.callbacks = model, compiled, callbacks
        self.initial_epoch = 0
        self._rng_epoch: dict | None = None
        self._pending: dict | None = None

    # ------------------------------------------------------------ for the callback
    def snapshot(self, step: int) -> dict[str, Any]:
        """At the end of an epoch (``step=0``) or after ``step`` steps of the current one.

        Under several processes every process must call it (the metric sums are all-reduced).
        """
        accumulation = getattr(self.compiled, "accumulation", None)
        if accumulation is not None:  # each process's own running sums, into rank 0's optimizer state_dict
            accumulation.gather_for_backup()
        metrics = None
        if step:
            metrics = [[m.name, [v.detach().clone() for v in getattr(m, "variables", [])]] for m in self.model.metrics]
            if process.is_distributed():  # the backup holds the sums over every process
                distributed.all_reduce_sum([v for _, values in metrics for v in values])
        return {
            "rng_epoch": self._rng_epoch if step else rng_state(),
            "rng_step": rng_state() if step else None,
            "metrics": metrics,
            "callbacks": [[type(cb).__name__, cb.state_dict()] for cb in self._stateful_callbacks()],
        }

    def resume_from(self, snapshot: dict[str, Any], epoch: int, step: int) -> None:
        """Resume at ``epoch`` after ``step`` of its steps, from what ``snapshot`` returned."""
        self._pending = dict(snapshot, step=step)
        self.initial_epoch = epoch

    # ------------------------------------------------------------ for the loop
    def batches(self, batches: Iterator) -> Iterator:
        """The epoch's ``(step, batch)`` pairs; on the first epoch after a restart, the steps not yet done."""
        pending, self._pending = self._pending, None
        if pending is None:
            self._rng_epoch = rng_state()
            yield from batches
            return
        self._load_callback_states(pending["callbacks"])
        self._rng_epoch = pending["rng_epoch"] or rng_state()
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
        if pending["metrics"] is not None:
            self._build_metrics(batch)  # on every process: a sharded model's forward is a collective
        if pending["metrics"] is not None and process.is_rank_zero():  # global sums; the others start at 0
            saved = dict((name, values) for name, values in pending["metrics"])
            for metric in self.model.metrics:
                for variable, value in zip(getattr(metric, "variables", []), saved.get(metric.name, [])):
                    variable.copy_(value)
        if pending["rng_step"] is not None:
            set_rng_state(pending["rng_step"])

    def _build_metrics(self, batch: Any) -> None:
        # The compiled loss and metrics are made from the first batch; one forward in eval mode
        # (no dropout, no BatchNorm update) builds them without changing any weight.
        loss, metrics = self.compiled.loss, self.compiled.metrics
        if (loss is None or loss.built) and metrics.built:
            return
        batch = to_device(batch, self.model.device)
        _, y, _ = batch
        with mode(self.model.module, training=False):
            y_pred = self.model.predict_step(batch)
        if loss is not None and not loss.built:
            loss.build(y, y_pred)
        if not metrics.built and y is not None:
            metrics.build(y, y_pred, self.model.device)

    def _stateful_callbacks(self) -> list:
        return [
            cb
            for cb in self.callbacks.callbacks
            if callable(getattr(cb, "state_dict", None)) and not callable(getattr(cb, "set_training_state", None))
        ]

    def _load_callback_states(self, states: list) -> None:
        for (name, state), callback in zip(states, self._stateful_callbacks()):
            if type(callback).__name__ == name:
                callback.load_state_dict(state)
