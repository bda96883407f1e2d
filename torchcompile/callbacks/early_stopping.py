# SPDX-License-Identifier: Apache-2.0
"""EarlyStopping: stop fit when a monitored quantity stops improving (Keras' behaviour).

Owns: patience counting, baseline, start_from_epoch and restoring the best weights. Not:
deciding what "improving" means (monitor.py).
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.callbacks.monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop training when `monitor` has not improved for `patience` epochs.

    Args:
        monitor: the log key to watch. Defaults to "val_loss".
        min_delta: changes smaller than this do not count as an improvement.
        patience: epochs without improvement after which training stops.
        verbose: 1 prints a line when stopping and when restoring weights.
        mode: "auto", "min" or "max" (see `MonitorCallback`).
        baseline: training stops unless the model improves on this value within
            `patience` epochs.
        restore_best_weights: at the end of training, put back the weights of the best
            epoch (whether or not it beat `baseline`).
        start_from_epoch: epochs to wait before monitoring starts (a warm-up).

    Example:
        >>> stopper = EarlyStopping(monitor="loss", patience=3)
        >>> # model.fit(x, y, epochs=100, callbacks=[stopper]) stops after 3 epochs without progress.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights: list | None = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        # Allow instances to be re-used across fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # If best weights were never set, the current weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only restart the wait if we beat both the baseline and our previous best.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        weights = None
        if self.best_weights is not None:
            weights = [torch.as_tensor(w) for w in self.best_weights]
        return {
            "best": self.best,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_epoch": self.best_epoch,
            "best_weights": weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = state["best"], state["wait"]
        self.stopped_epoch, self.best_epoch = state["stopped_epoch"], state["best_epoch"]
        weights = state["best_weights"]
        self.best_weights = None if weights is None else [w.numpy() for w in weights]
