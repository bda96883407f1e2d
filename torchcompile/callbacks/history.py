# SPDX-License-Identifier: Apache-2.0
"""History: the per-epoch logs of one `fit`, returned by it (Keras semantics)."""

from __future__ import annotations

from torchcompile.callbacks.callback import Callback
from torchcompile.plotting import plot_history  # imports matplotlib only when it draws


class History(Callback):
    """Records epoch logs: `history[key]` is a list of Python floats, `epoch` the epoch indices."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def plot(self, path=None, metrics=None):
        """Draw the loss and metric curves, train beside validation; save a PNG when `path` is given.

        Needs matplotlib (`pip install "torchcompile[plot]"`); see `tc.plot_history`, which this
        calls. Returns the matplotlib figure.
        """
        return plot_history(self, path=path, metrics=metrics)
