# SPDX-License-Identifier: Apache-2.0
"""The Callback base class with Keras' hooks.

Owns: hook names, `self.model`/`self.params`. Not: dispatching the hooks (callback_list.py) or
what any particular callback does (one module each).
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Base class for callbacks; override only the hooks you need.

    `self.model` is the `tc.Model` being trained, `self.params` holds `verbose`,
    `epochs` and `steps`. Set `self.model.stop_training = True` to stop `fit`.
    Batch `logs` hold 0-d tensors (running values); reading one as a Python number
    syncs the device, so do it only when needed.
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        """Keras 2 alias of `on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """Keras 2 alias of `on_train_batch_end`."""
