# SPDX-License-Identifier: Apache-2.0
"""LambdaCallback: a callback made of plain functions (Keras' arguments and signatures).

The hooks are methods of the class that call the given functions, so fit's check for
"does any callback want batch hooks" (callback.py) sees them.
"""

from __future__ import annotations

from typing import Any, Callable

from torchcompile.callbacks.callback import Callback

_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class LambdaCallback(Callback):
    """Calls the functions given for each hook.

    Args:
        on_epoch_begin, on_epoch_end: ``fn(epoch, logs)``.
        on_train_begin, on_train_end: ``fn(logs)``.
        on_train_batch_begin, on_train_batch_end: ``fn(batch, logs)``; batch logs hold 0-d
            device tensors (reading one as a number syncs the device).
        **kwargs: any other hook by name (``on_test_batch_end=fn``...); other names become
            attributes, as in Keras.

    Example:
        >>> print_epoch = LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))
    """

    def __init__(
        self,
        on_epoch_begin: Callable | None = None,
        on_epoch_end: Callable | None = None,
        on_train_begin: Callable | None = None,
        on_train_end: Callable | None = None,
        on_train_batch_begin: Callable | None = None,
        on_train_batch_end: Callable | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        given = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        given.update({k: kwargs.pop(k) for k in list(kwargs) if k in _HOOKS})
        for keras2, hook in (("on_batch_begin", "on_train_batch_begin"), ("on_batch_end", "on_train_batch_end")):
            if kwargs.get(keras2) is not None and given[hook] is None:
                given[hook] = kwargs.pop(keras2)
        self.functions = {k: fn for k, fn in given.items() if fn is not None}
        self.__dict__.update(kwargs)

    def _run(self, hook: str, *args: Any) -> None:
        fn = self.functions.get(hook)
        if fn is not None:
            fn(*args)

    def on_train_begin(self, logs=None):
        self._run("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._run("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._run("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._run("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._run("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._run("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._run("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._run("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._run("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._run("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._run("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._run("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._run("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._run("on_predict_batch_end", batch, logs)
