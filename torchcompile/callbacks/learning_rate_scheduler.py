# SPDX-License-Identifier: Apache-2.0
"""LearningRateScheduler: set the learning rate at the start of each epoch from `schedule`.

Owns: calling `schedule(epoch, lr)` (or Keras 2's `schedule(epoch)`), checking it returns a
float, and logging `learning_rate` in the epoch logs as Keras does. The rate lives in the
torch optimizer's param_groups (`tc.optimizers.get_learning_rate` / `set_learning_rate`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from torchcompile.callbacks.callback import Callback
from torchcompile.optimizers import get_learning_rate, set_learning_rate


class LearningRateScheduler(Callback):
    """Learning rate scheduler, as Keras'.

    Args:
        schedule: ``schedule(epoch, lr) -> new_lr`` (epoch 0-based), or ``schedule(epoch)``.
        verbose: 1 prints the rate each epoch.

    Example:
        >>> def scheduler(epoch, lr):
        ...     return lr if epoch < 10 else lr * 0.9
        >>> callback = LearningRateScheduler(scheduler)
    """

    def __init__(self, schedule: Callable, verbose: int = 0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:  # new API
            learning_rate = self.schedule(epoch, get_learning_rate(optimizer))
        except TypeError:  # Keras 2's schedule(epoch)
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                "The output of the `schedule` function should be a float. "
                f"Got: {learning_rate}. Return a Python float. Received: {learning_rate!r}"
            )
        set_learning_rate(optimizer, float(learning_rate))
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(learning_rate)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(self.model.optimizer)
