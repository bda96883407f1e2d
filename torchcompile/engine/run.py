# SPDX-License-Identifier: Apache-2.0
"""One call of fit, evaluate or predict.

Owns: the epochs, ``validation_freq``, the stop flag's epoch-end agreement across processes,
choosing and caching the step functions, the per-run input checks (the first batch's, and
per-batch label checks for data that arrives on the CPU), the hand-off to a callback that
backs training up (engine/resume.py), and the one host sync per epoch. It touches the model
only through ``loop.Trainable``. Not: argument checks and data splitting (Model, engine/
validation.py), what a step computes (Model), one epoch's batches (engine/loop.py).
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import torch

from torchcompile import optimizers as optimizers_module
from torchcompile.core.batches import for_step
from torchcompile.core.tree import flatten
from torchcompile.engine import data_adapters, distributed, execution, loop, validation
from torchcompile.engine.compiled import Compiled, leaf_metrics, metric_names_in_order
from torchcompile.engine.device import to_device
from torchcompile.engine.epoch_iterator import EpochIterator
from torchcompile.engine.fast_step import STEP_METHODS as STEP_METHODS  # Model names them to Run
from torchcompile.engine.fast_step import fast_step
from torchcompile.engine.loop import Trainable
from torchcompile.engine.resume import TrainingState


def data_iterator(
    model: Trainable,
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    steps: int | None,
    shuffle: bool = False,
    class_weight: Any = None,
    training: bool = False,
) -> EpochIterator:
    """The batches of one fit/evaluate/predict argument set, on ``model``'s device, float inputs in
    its parameters' dtype (sharded under several processes)."""
    x = distributed.reshard_loader(x, training)  # several processes: a training DataLoader reads its share
    sharding = distributed.sharding_for(x, batch_size, steps, training)  # None in one process
    float_dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    adapter = data_adapters.get_data_adapter(
        x, y, sample_weight, batch_size, shuffle, class_weight, model.device, steps=steps, sharding=sharding,
        float_dtype=float_dtype,
    )  # fmt: skip
    # Training carries a partly read pass into the next epoch; evaluation starts afresh (Keras).
    return EpochIterator(adapter, steps, carry_over=training)


class Run:
    """One fit, evaluate or predict of ``model``.

    Args:
        model: the model (``loop.Trainable``).
        compiled: what its compile() built, or None (predict needs no compile).
        callbacks: a ``CallbackList``.
        overridden: which of ``STEP_METHODS`` the model overrides (None: not known). Overriding
            ``train_step`` makes CUDA graphs refuse it; the default train and test steps may run as
            engine/fast_step.py's specialised equivalents where the model overrides none they use.
    """

    def __init__(self, model: Trainable, compiled: Compiled | None, callbacks: Any, overridden: Any = None):
        self.model, self.compiled, self.callbacks = model, compiled, callbacks
        self.custom_train_step = overridden is not None and "train_step" in overridden
        self.overridden = overridden
        self.check_labels_per_batch = False
        self.validation: EpochIterator | None = None  # fit's validation batches, checked with the first step

    # ------------------------------------------------------------ fit
    def fit(self, *args: Any, **kwargs: Any) -> Any:
        with exclusive(self.model, "fit"):
            return self._fit(*args, **kwargs)

    def _fit(
        self,
        train: EpochIterator,
        epochs: int,
        initial_epoch: int,
        val: EpochIterator | None,
        validation_freq: int | list,
    ) -> Any:
        """Train for ``epochs``; returns the callbacks' History."""
        model, callbacks = self.model, self.callbacks
        model.stop_training = False
        self.validation = val
        self._place()
        state = TrainingState(model, self.compiled, callbacks)
        resume = state if callbacks.set_training_state(state) else None
        train_fn = self.step_function("train")
        callbacks.on_train_begin()
        initial_epoch = max(initial_epoch, state.initial_epoch)
        epoch_logs: dict = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            with loop.mode(model.module, training=True):
                (last,) = self._run_epoch("train", train, train_fn, resume)
            model.stop_training = distributed.end_epoch(model.module, leaf_metrics(model.metrics), model.stop_training)
            epoch_logs = self._epoch_logs(last)  # host sync, once per epoch
            if val is not None and validation.should_validate(epoch, validation_freq):
                epoch_logs.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        if self.compiled.optimizer is not None:
            with torch.no_grad():
                optimizers_module.finalize_variable_values(self.compiled.optimizer)  # use_ema: weights ← averages
        callbacks.on_train_end(epoch_logs)
        return callbacks.history

    # ------------------------------------------------------------ evaluate and predict
    def evaluate(self, iterator: EpochIterator) -> dict[str, Any]:
        """Loss and metrics over one pass, as Python numbers (the test hooks run around it)."""
        with exclusive(self.model, "evaluate"):
            return self._evaluate(iterator)

    def _evaluate(self, iterator: EpochIterator) -> dict[str, Any]:
        model = self.model
        self._place()
        model.reset_metrics()
        self.callbacks.on_test_begin()
        with loop.mode(model.module, training=False):
            (last,) = self._run_epoch("test", iterator, self.step_function("test"))
        distributed.all_reduce_metrics(leaf_metrics(model.metrics))  # several processes: global values
        logs = self._epoch_logs(last)  # host sync, once per evaluation
        self.callbacks.on_test_end(logs)
        return logs

    def predict(self, iterator: EpochIterator, x: Any) -> Any:
        """The outputs over ``iterator`` as NumPy arrays, in the module's output structure (every
        process's share gathered in order under several processes)."""
        with exclusive(self.model, "predict"):
            return self._predict(iterator, x)

    def _predict(self, iterator: EpochIterator, x: Any) -> Any:
        self._place()
        self.callbacks.on_predict_begin()
        with loop.mode(self.model.module, training=False):
            outputs = self._run_epoch("predict", iterator, self.step_function("predict"))
        self.callbacks.on_predict_end()
        if not outputs:
            raise ValueError(
                "predict() got no batches from `x`; pass data with at least one sample. "
                f"Received: x of type {type(x).__name__}"
            )
        predictions = loop.concatenate_outputs(outputs)
        sharding = getattr(iterator.adapter, "sharding", None)  # several processes: each predicted its share
        return predictions if sharding is None else distributed.gather_predictions(predictions, sharding)

    def on_batch(self, mode: str, batch: tuple, return_dict: bool) -> Any:
        """``train_on_batch`` / ``test_on_batch`` / ``predict_on_batch`` on one CPU batch."""
        with exclusive(self.model, f"{mode}_on_batch"):
            return self._on_batch(mode, batch, return_dict)

    def _on_batch(self, mode: str, batch: tuple, return_dict: bool) -> Any:
        self._place()
        model = self.model
        if mode != "predict":
            model.reset_metrics()
            if self.compiled.loss is not None and not self.compiled.loss.built:
                self.compiled.request_checks()  # the first call's checks; later calls may run compiled
        with loop.mode(model.module, training=mode == "train"):
            result = self.step_function(mode)(self.prepare(batch, mode))
        if mode == "predict":
            return loop.concatenate_outputs([result])
        return logs_result(self._epoch_logs(result), return_dict, model.metrics)

    def _epoch_logs(self, last: Any) -> dict[str, Any]:
        """Keras' rule: the metrics' results, unless the last step returned other keys (then its logs)."""
        metric_logs = self.model.get_metrics_result()
        if isinstance(last, loop.LazyLogs) and last.is_metrics_result or not isinstance(last, Mapping):
            return loop.pythonify_logs(metric_logs)
        return loop.pythonify_logs(metric_logs if set(last) == set(metric_logs) else last)

    def _place(self) -> None:
        """Submodules and metrics made after the model moved (a subclass's own) join its device."""
        model, device = self.model, self.model.device
        if any(t.device != device for t in itertools.chain(model.module.parameters(), model.module.buffers())):
            model.to(device)
        for metric in leaf_metrics(model.metrics):
            if isinstance(metric, torch.nn.Module) and getattr(metric, "device", device) != device:
                metric.to(device)

    # ------------------------------------------------------------ steps
    def step_function(self, mode: str) -> Callable[[Any], Any]:
        """The step for ``mode``: eager, through torch.compile, and/or run in captured groups."""
        model, compiled = self.model, self.compiled
        step = {"train": model.train_step, "test": model.test_step, "predict": model.predict_step}[mode]
        if compiled is None:
            return step
        graphs = mode == "train" and compiled.cuda_graph
        if not (compiled.jit_compile or graphs):
            return fast_step(model, compiled, step, mode, self.overridden)
        if mode not in compiled.step_functions:  # built once per compile(), kept across fit() calls
            compiled.step_functions[mode] = execution.step_function(
                model, compiled, step, graphs, self.custom_train_step
            )
        return compiled.step_functions[mode]

    def prepare(self, batch: tuple, mode: str) -> Any:
        """Check a CPU batch's sparse labels (no device sync, never a device-side assert), move it,
        and pack it as a step receives it: ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` (Keras)."""
        loss = self.compiled.loss if self.compiled is not None else None
        if self.check_labels_per_batch:  # a batch from a Dataset, DataLoader or generator, still on the CPU
            _refuse_empty(batch)
            if mode != "predict" and batch[1] is not None and loss and loss.built:
                loss.check_labels(batch[1])
        return for_step(to_device(batch, self.model.device))

    def _validation_labels(self, mode: str) -> list:
        # Validation arrays' labels are checked with the training arrays', before the first step.
        val = self.validation if mode == "train" else None
        if val is None or val.checked:
            return []
        return [getattr(val.adapter, "labels", None)]

    def _run_epoch(self, mode: str, iterator: EpochIterator, step_fn: Callable, resume: Any = None) -> list:
        adapter = iterator.adapter
        self.check_labels_per_batch = isinstance(adapter, data_adapters.IterableDataAdapter)
        if not iterator.checked and self.compiled is not None and mode != "predict":
            iterator.checked = True  # the first-batch checks (a host sync) run once per run, not per epoch
            self.compiled.request_checks(adapter.labels, *self._validation_labels(mode))
        ready = (
            getattr(adapter, "on_device", False)
            and getattr(adapter, "device", None) == self.model.device
            and not self.check_labels_per_batch
        )
        spe = self.compiled.steps_per_execution if self.compiled is not None else 1
        return loop.run_epoch(
            self.model,
            mode,
            iterator,
            self.callbacks,
            step_fn,
            prepare=_pack if ready else self.prepare,
            steps_per_execution=spe,
            resume=resume,
        )


def fit_iterators(
    model: Trainable,
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    epochs: int,
    initial_epoch: int,
    shuffle: bool,
    class_weight: Any,
    steps_per_epoch: int | None,
    validation_split: float,
    validation_data: Any,
    validation_steps: int | None,
    validation_batch_size: int | None,
    validation_freq: int | list,
) -> tuple[EpochIterator, EpochIterator | None]:
    """fit's training and validation batches, every data argument checked before any step runs."""
    if validation_split and validation_data is None:
        (x, y, sample_weight), validation_data = validation.split(x, y, sample_weight, validation_split)
    train = data_iterator(
        model, x, y, sample_weight, batch_size, steps_per_epoch, shuffle=shuffle, class_weight=class_weight,
        training=True,
    )  # fmt: skip
    train.check_passes(epochs - initial_epoch, "steps_per_epoch")
    if validation_data is None:
        return train, None
    vx, vy, vsw, vbs = validation.unpack(validation_data, validation_batch_size, batch_size)
    val = data_iterator(model, vx, vy, vsw, vbs, validation_steps)
    _check_same_widths(train.adapter, val.adapter)
    validations = sum(validation.should_validate(e, validation_freq) for e in range(initial_epoch, epochs))
    val.check_passes(validations, "validation_steps", source="validation_data")
    return train, val


def single_batch(model: Trainable, x: Any, y: Any, sample_weight: Any, class_weight: Any = None) -> tuple:
    """``*_on_batch``'s data as one CPU batch, checked as fit checks its arrays."""
    return next(iter(data_iterator(model, x, y, sample_weight, None, 1, class_weight=class_weight).adapter))


def _pack(batch: tuple, mode: str) -> Any:
    return for_step(batch)


def logs_result(logs: dict[str, Any], return_dict: bool, metrics: list) -> Any:
    """evaluate's and ``*_on_batch``'s return: the dict (keys sorted, as Keras), or the values in the
    order of ``metrics`` (loss, compiled metrics, per-output losses), then any other key sorted (a
    scalar when there is one value), as Keras' ``_flatten_metrics_in_order``."""
    if return_dict:
        return logs
    names = metric_names_in_order(metrics)
    values = [logs[n] for n in names if n in logs] + [logs[k] for k in sorted(logs) if k not in names]
    return values[0] if len(values) == 1 else values


def check_fit_arguments(
    model: Any, verbose: Any, epochs: Any = 1, custom_train_step: bool = False, method: str = "fit"
) -> None:
    """Refuse, before any work, what fit/evaluate/predict/*_on_batch cannot run with."""
    if method != "predict" and method != "predict_on_batch" and not model.compiled:
        raise RuntimeError(
            f"You must call compile() before {method}(): the model needs an optimizer "
            "and a loss. Call model.compile(optimizer=..., loss=...). "
            f"Received: {method}() on an uncompiled model"
        )
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool):
        raise TypeError(f"`epochs` must be an integer. Received: epochs={epochs!r}")
    if method in ("fit", "train_on_batch") and model.optimizer is None and not custom_train_step \
            and next(iter(model.parameters()), None) is not None:  # fmt: skip
        raise ValueError(
            f"{method}() needs an optimizer: compile(optimizer=None) left the model without one. "
            "Pass optimizer=... (an id such as 'adam', a tc.optimizers object or a torch optimizer). "
            "Received: optimizer=None"
        )


def _refuse_empty(batch: tuple) -> None:
    first = next((t for t in flatten(batch[0]) if isinstance(t, torch.Tensor)), None)
    if first is not None and first.dim() and first.shape[0] == 0:
        raise ValueError(
            "The data yielded an empty batch (0 samples); every batch needs at least one. Check the "
            f"generator or Dataset that made it. Received: a batch of shape {tuple(first.shape)}"
        )


class _Guard:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fitting_thread: int | None = None


_GUARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


@contextlib.contextmanager
def exclusive(model: Any, what: str) -> Iterator[None]:
    """One call at a time on one model: calls from several threads are serialised (a model's mode,
    metric state and weights are shared), and a call from another thread while ``fit`` runs is
    refused rather than left waiting for the whole fit or run in the wrong mode. Calls nested in
    the same thread (a callback evaluating during fit) go through."""
    with _GUARDS_LOCK:
        guard = _GUARDS.setdefault(model, _Guard())
    me = threading.get_ident()
    if guard.fitting_thread not in (None, me):
        raise RuntimeError(
            f"{what}() was called from another thread while fit() runs on this model; one model runs one call "
            "at a time (its train/eval mode, metrics and weights are shared). Call it after fit returns, from "
            "a callback of the fit, or on a copy of the model. Received: a concurrent "
            f"{what}() on {type(model).__name__}"
        )
    with guard.lock:
        outer = guard.fitting_thread
        if what == "fit":
            guard.fitting_thread = me
        try:
            yield
        finally:
            guard.fitting_thread = outer


def _check_same_widths(train: Any, val: Any) -> None:
    """In-memory validation arrays whose samples differ in shape from the training arrays' fail now,
    not at the first validation after an epoch of steps."""
    train_data, val_data = getattr(train, "data", None), getattr(val, "data", None)
    if not isinstance(train_data, tuple) or not isinstance(val_data, tuple):
        return
    for name, ours, theirs in zip(("x", "y"), train_data, val_data):
        shapes = [[tuple(t.shape[1:]) for t in flatten(part) if hasattr(t, "shape")] for part in (ours, theirs)]
        if ours is not None and theirs is not None and shapes[0] != shapes[1]:
            raise ValueError(
                f"`validation_data`'s {name} has samples of shape {shapes[1]}, but the training {name}'s are "
                f"{shapes[0]}: the model would fail on it after the first epoch. Give validation data shaped "
                f"like the training data. Received: validation {name} sample shapes {shapes[1]}"
            )
