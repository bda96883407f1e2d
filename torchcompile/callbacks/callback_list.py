# SPDX-License-Identifier: Apache-2.0
"""CallbackList: dispatches Keras' hooks to the callbacks of one fit/evaluate/predict.

Owns: hook order, adding History and the progress bar, accepting any object with Keras'
callback protocol (a ``tc.callbacks.Callback``, a ``keras.callbacks.Callback`` subclass, a
third-party callback: the hooks it defines are called, the others skipped), handing every hook
a dict (``{}`` when there is nothing to log, as Keras), telling the loop whether any callback
has batch hooks, and handing a ``set_training_state`` callback (BackupAndRestore) fit's
training state, last in the list so that its backup holds the others' state after the same
batch or epoch. Not: what any callback does.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.history import History
from torchcompile.callbacks.progbar_logger import ProgbarLogger
from torchcompile.core.overrides import overrides

BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}
_KERAS_2_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}
_PROTOCOL = ("set_model", "set_params")


def _has_hook(callback: Any, hook: str) -> bool:
    if not isinstance(callback, Callback):
        return callable(getattr(callback, hook, None))
    # on_train_batch_* fall back to the Keras 2 aliases.
    alias = _KERAS_2_ALIASES.get(hook)
    return overrides(callback, Callback, hook) or (alias is not None and overrides(callback, Callback, alias))


def _as_numbers(logs: Any) -> dict[str, Any]:
    """A plain dict, one-element tensors read as floats: what Keras gives a callback (its reads sync the
    device, once per hook, and only when a third-party callback has that hook)."""
    return {k: float(v) if isinstance(v, torch.Tensor) and v.numel() == 1 else v for k, v in logs.items()}


def _check(callback: Any) -> Any:
    if isinstance(callback, Callback) or all(callable(getattr(callback, name, None)) for name in _PROTOCOL):
        return callback
    raise TypeError(
        f"A callback needs Keras' callback protocol (set_model, set_params and the on_* hooks it uses); "
        f"{type(callback).__name__} has no {' or '.join(n for n in _PROTOCOL if not hasattr(callback, n))}. "
        f"Subclass tc.callbacks.Callback or use LambdaCallback. Received: callbacks={callback!r}"
    )


class CallbackList(Callback):
    """Calls each hook on every callback, in order.

    Args:
        callbacks: the user's callbacks (one, or a list).
        add_history: append a `History` unless one is given.
        add_progbar: append a `ProgbarLogger` unless one is given.
        model: the `tc.Model`.
        **params: `verbose`, `epochs`, `steps`, given to every callback.
    """

    def __init__(
        self,
        callbacks: Iterable[Any] | Any = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ):
        super().__init__()
        # Keras flattens what it is given, so a single callback works as well as a list.
        single = callbacks is not None and not isinstance(callbacks, (list, tuple))
        self.callbacks = [_check(cb) for cb in ([callbacks] if single else list(callbacks or []))]
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if add_history and self.history is None:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(cb, ProgbarLogger) for cb in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        backups = [cb for cb in self.callbacks if callable(getattr(cb, "set_training_state", None))]
        self.callbacks = [cb for cb in self.callbacks if cb not in backups] + backups
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

    def set_training_state(self, state: Any) -> bool:
        """Hand fit's ``engine.resume.TrainingState`` to the callbacks that take it; whether any did."""
        takers = [cb for cb in self.callbacks if callable(getattr(cb, "set_training_state", None))]
        for cb in takers:
            cb.set_training_state(state)
        return bool(takers)

    def wants_batch_hooks(self, mode: str) -> bool:
        """Whether any callback has a batch hook of ``mode``; if none does, the loop skips them."""
        return any(_has_hook(cb, hook) for cb in self.callbacks for hook in BATCH_HOOKS[mode])

    def batch_hooks(self, mode: str) -> tuple[Any, Any]:
        """The ``(begin, end)`` batch hooks of ``mode`` ("train", "test" or "predict"), each calling only
        the callbacks that have it (the others' are no-ops), or None where no callback has it."""
        return tuple(self._dispatcher(hook) for hook in BATCH_HOOKS[mode])

    def _dispatcher(self, hook: str) -> Any:
        takers = [cb for cb in self.callbacks if _has_hook(cb, hook)]
        if not takers:
            return None
        if len(takers) == 1 and isinstance(takers[0], Callback):  # the usual one (the bar): called directly
            method = getattr(takers[0], hook)

            def dispatch(batch: int, logs: Any = None) -> None:
                method(batch, logs={} if logs is None else logs)

            return dispatch

        def dispatch(batch: int, logs: Any = None) -> None:
            self._call_each(takers, hook, batch, logs=logs)

        return dispatch

    def _call(self, hook: str, *args: Any, logs: Any = None) -> None:
        self._call_each(self.callbacks, hook, *args, logs=logs)

    @staticmethod
    def _call_each(callbacks: list, hook: str, *args: Any, logs: Any = None) -> None:
        logs = {} if logs is None else logs
        plain = logs if isinstance(logs, dict) else None
        for cb in callbacks:
            method = getattr(cb, hook, None)
            if method is None:
                continue
            if not isinstance(cb, Callback) and plain is None:
                plain = _as_numbers(logs)  # as Keras hands its callbacks: a dict of Python numbers
            method(*args, logs=logs if isinstance(cb, Callback) else plain)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call("on_predict_batch_end", batch, logs=logs)
