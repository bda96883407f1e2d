# SPDX-License-Identifier: Apache-2.0
"""The Callback base class with Keras' hooks, and CallbackList, which dispatches them.

Owns: hook names and order, `self.model`/`self.params`, adding History and the progress
bar. Not: what any particular callback does (one module each).
"""

from __future__ import annotations

from typing import Any, Iterable

BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


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


def _overrides(callback: Callback, hook: str) -> bool:
    own = getattr(type(callback), hook, None)
    if own is not getattr(Callback, hook):
        return True
    # on_train_batch_* fall back to the Keras 2 aliases.
    alias = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}.get(hook)
    return alias is not None and getattr(type(callback), alias) is not getattr(Callback, alias)


class CallbackList(Callback):
    """Calls each hook on every callback, in order.

    Args:
        callbacks: the user's callbacks.
        add_history: append a `History` unless one is given.
        add_progbar: append a `ProgbarLogger` unless one is given.
        model: the `tc.Model`.
        **params: `verbose`, `epochs`, `steps`, given to every callback.
    """

    def __init__(
        self,
        callbacks: Iterable[Callback] | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ):
        super().__init__()
        from torchcompile.callbacks.history import History
        from torchcompile.callbacks.progbar_logger import ProgbarLogger

        # Keras flattens what it is given, so a single callback works as well as a list.
        self.callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"Every callback must be a tc.callbacks.Callback; got {type(cb).__name__}. "
                    f"Subclass tc.callbacks.Callback or use LambdaCallback. Received: callbacks={cb!r}"
                )
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if add_history and self.history is None:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def wants_batch_hooks(self, mode: str) -> bool:
        """Whether any callback overrides a batch hook of ``mode``; if none does, the loop skips them."""
        return any(_overrides(cb, hook) for cb in self.callbacks for hook in BATCH_HOOKS[mode])

    def batch_hooks(self, mode: str) -> tuple[Any, Any]:
        """The bound ``(begin, end)`` batch hooks of ``mode`` ("train", "test" or "predict")."""
        begin, end = BATCH_HOOKS[mode]
        return getattr(self, begin), getattr(self, end)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs)
