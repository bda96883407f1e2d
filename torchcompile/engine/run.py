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

from typing import Any, Callable

import torch

from torchcompile import optimizers as optimizers_module
from torchcompile.engine import data_adapters, distributed, execution, loop, validation
from torchcompile.engine.compiled import Compiled
from torchcompile.engine.device import to_device
from torchcompile.engine.epoch_iterator import EpochIterator
from torchcompile.engine.loop import Trainable
from torchcompile.engine.resume import TrainingState


def data_iterator(
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    steps: int | None,
    device: torch.device,
    shuffle: bool = False,
    class_weight: Any = None,
    training: bool = False,
) -> EpochIterator:
    """The batches of one fit/evaluate/predict argument set, sharded under several processes."""
    sharding = distributed.sharding_for(x, batch_size, steps, training)  # None in one process
    adapter = data_adapters.get_data_adapter(
        x, y, sample_weight, batch_size, shuffle, class_weight, device, steps=steps, sharding=sharding
    )
    # Training carries a partly read pass into the next epoch; evaluation starts afresh (Keras).
    return EpochIterator(adapter, steps, carry_over=training)


class Run:
    """One fit, evaluate or predict of ``model``.

    Args:
        model: the model (``loop.Trainable``).
        compiled: what its compile() built, or None (predict needs no compile).
        callbacks: a ``CallbackList``.
        custom_train_step: whether the model overrides ``train_step`` (CUDA graphs refuse it).
    """

    def __init__(self, model: Trainable, compiled: Compiled | None, callbacks: Any, custom_train_step: bool = False):
        self.model, self.compiled, self.callbacks = model, compiled, callbacks
        self.custom_train_step = custom_train_step
        self.check_labels_per_batch = False

    # ------------------------------------------------------------ fit
    def fit(
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
                self._run_epoch("train", train, train_fn, resume)
            model.stop_training = distributed.end_epoch(model.module, model.metrics, model.stop_training)
            epoch_logs = loop.pythonify_logs(model.get_metrics_result())  # host sync, once per epoch
            if val is not None and validation.should_validate(epoch, validation_freq):
                epoch_logs.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        with torch.no_grad():
            optimizers_module.finalize_variable_values(self.compiled.optimizer)  # use_ema: weights ← their average
        callbacks.on_train_end(epoch_logs)
        return callbacks.history

    # ------------------------------------------------------------ evaluate and predict
    def evaluate(self, iterator: EpochIterator) -> dict[str, Any]:
        """Loss and metrics over one pass, as Python numbers (the test hooks run around it)."""
        model = self.model
        model.reset_metrics()
        self.callbacks.on_test_begin()
        with loop.mode(model.module, training=False):
            self._run_epoch("test", iterator, self.step_function("test"))
        distributed.all_reduce_metrics(model.metrics)  # several processes: global values
        logs = loop.pythonify_logs(model.get_metrics_result())  # host sync, once per evaluation
        self.callbacks.on_test_end(logs)
        return logs

    def predict(self, iterator: EpochIterator) -> list:
        """Every predict step's output, in order (this process's share under several processes)."""
        self.callbacks.on_predict_begin()
        with loop.mode(self.model.module, training=False):
            outputs = self._run_epoch("predict", iterator, self.step_function("predict"))
        self.callbacks.on_predict_end()
        return outputs

    # ------------------------------------------------------------ steps
    def step_function(self, mode: str) -> Callable[[Any], Any]:
        """The step for ``mode``: eager, through torch.compile, and/or run in captured groups."""
        model, compiled = self.model, self.compiled
        step = {"train": model.train_step, "test": model.test_step, "predict": model.predict_step}[mode]
        if compiled is None:
            return step
        graphs = mode == "train" and compiled.cuda_graph
        if not (compiled.jit_compile or graphs):
            return step
        if mode not in compiled.step_functions:  # built once per compile(), kept across fit() calls
            compiled.step_functions[mode] = execution.step_function(
                model, compiled, step, graphs, self.custom_train_step
            )
        return compiled.step_functions[mode]

    def prepare(self, batch: Any, mode: str) -> Any:
        """Check a CPU batch's sparse labels (no device sync, never a device-side assert), then move it."""
        loss = self.compiled.loss if self.compiled is not None else None
        if self.check_labels_per_batch and mode != "predict" and batch[1] is not None and loss and loss.built:
            loss.check_labels(batch[1])
        return to_device(batch, self.model.device)

    def _run_epoch(self, mode: str, iterator: EpochIterator, step_fn: Callable, resume: Any = None) -> list:
        adapter = iterator.adapter
        self.check_labels_per_batch = isinstance(adapter, data_adapters.IterableDataAdapter)
        if not iterator.checked and self.compiled is not None and mode != "predict":
            iterator.checked = True  # the first-batch checks (a host sync) run once per run, not per epoch
            self.compiled.request_checks(adapter.labels)
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
            prepare=None if ready else self.prepare,
            steps_per_execution=spe,
            resume=resume,
        )


def fit_iterators(
    x: Any,
    y: Any,
    sample_weight: Any,
    batch_size: int | None,
    epochs: int,
    initial_epoch: int,
    device: torch.device,
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
        x, y, sample_weight, batch_size, steps_per_epoch, device, shuffle=shuffle, class_weight=class_weight,
        training=True,
    )  # fmt: skip
    train.check_passes(epochs - initial_epoch, "steps_per_epoch")
    if validation_data is None:
        return train, None
    vx, vy, vsw, vbs = validation.unpack(validation_data, validation_batch_size, batch_size)
    val = data_iterator(vx, vy, vsw, vbs, validation_steps, device)
    validations = sum(validation.should_validate(e, validation_freq) for e in range(initial_epoch, epochs))
    val.check_passes(validations, "validation_steps", source="validation_data")
    return train, val


def single_batch(x: Any, y: Any, sample_weight: Any, class_weight: Any = None) -> tuple:
    """``*_on_batch``'s data as one CPU batch, checked as fit checks its arrays."""
    adapter = data_adapters.get_data_adapter(x, y, sample_weight, None, False, class_weight, steps=1)
    return next(iter(adapter))
