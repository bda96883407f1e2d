# SPDX-License-Identifier: Apache-2.0
"""tc.Model: a torch.nn.Module with Keras' compile / fit / evaluate / predict.

Owns: the device, compile(), argument checks for fit/evaluate/predict, and the three
steps (train_step / test_step / predict_step) users may override as in Keras. Not: the
loop (engine/loop.py), batching (engine/data_adapters.py), losses and metrics.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from torchcompile import metrics as metrics_module
from torchcompile import mixed_precision, saving
from torchcompile import optimizers as optimizers_module
from torchcompile import summary as summary_module
from torchcompile.callbacks.callback import CallbackList
from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine import compile_utils, data_adapters, distributed, execution, loop, module_inputs, validation
from torchcompile.engine.compile_utils import CompiledLoss, CompiledMetrics
from torchcompile.engine.device import resolve_device, to_device
from torchcompile.engine.epoch_iterator import EpochIterator


class Model:
    """Wraps ``module`` (any ``torch.nn.Module``) and moves it to ``device`` once.

    Args:
        module: the network; `model.module` is this very object.
        device: "auto" (CUDA when available, else CPU), a string or a ``torch.device``.

    Example:
        >>> model = Model(torch.nn.Linear(4, 1), device="cpu")
        >>> model.compile(optimizer="sgd", loss="mse")
    """

    def __init__(self, module: nn.Module, device: str | torch.device = "auto"):
        if not isinstance(module, nn.Module):
            raise TypeError(
                "tc.Model wraps a torch.nn.Module; build your network as one (or use "
                f"tc.Sequential([...])). Received: module of type {type(module).__name__}"
            )
        self.module = module
        self.device = distributed.setup(resolve_device(device))  # under torchrun: the group, cuda:LOCAL_RANK
        self.module.to(self.device)
        self.optimizer: torch.optim.Optimizer | None = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.jit_compile = False
        self.steps_per_execution = 1
        self._compiled_loss: CompiledLoss | None = None
        self._compiled_metrics: CompiledMetrics | None = None
        self._loss_tracker = metrics_module.Mean(name="loss").to(self.device)
        self._output_loss_trackers: list = []
        self._check_next_batch = False
        self._labels_to_check: Any = None
        self._check_labels_per_batch = False
        self._jit_steps: dict[str, Any] = {}
        self._ddp: Any = None  # DistributedDataParallel over self.module under several processes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def __repr__(self) -> str:
        return f"tc.Model({type(self.module).__name__}, device={str(self.device)!r})"

    # ------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        metrics: Any = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        jit_compile: bool = False,
        steps_per_execution: int = 1,
        cuda_graph: bool = False,
        dtype_policy: Any = None,
    ) -> None:
        """Configure training, as Keras' ``compile``; recompiling keeps the weights.

        `model.optimizer` becomes a real ``torch.optim.Optimizer`` over the module's
        parameters. String ids are checked now; "accuracy" and "crossentropy" are
        resolved from the shapes of the first batch, as Keras does. ``jit_compile=True``
        runs the steps through ``torch.compile`` (eagerly, with a warning, where it cannot).
        ``steps_per_execution`` groups steps: batch hooks run once per group (Keras); with
        ``cuda_graph=True`` on CUDA each group of training steps replays as one captured CUDA
        graph (engine/execution.py lists the limits). ``dtype_policy`` (a name or a
        ``tc.mixed_precision.Policy``) defaults to ``tc.mixed_precision.global_policy()``.
        """
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(
                "`steps_per_execution` must be a positive integer. "
                f"Received: steps_per_execution={steps_per_execution!r}"
            )
        compile_utils.check_ids(loss, metrics, weighted_metrics)
        self.optimizer = optimizers_module.build(optimizer, list(self.module.parameters()))
        self._compiled_loss = CompiledLoss(loss, loss_weights) if loss is not None else None
        self._compiled_metrics = CompiledMetrics(metrics, weighted_metrics)
        self._output_loss_trackers = []
        self.jit_compile = bool(jit_compile)
        self.steps_per_execution = steps_per_execution
        self.cuda_graph = bool(cuda_graph)
        self.dtype_policy = mixed_precision.get(dtype_policy or mixed_precision.global_policy())
        self._precision = mixed_precision.Precision(self.dtype_policy, self.device, self.optimizer)
        self._jit_steps = {}
        self._ddp = distributed.wrap(self.module, self.device)  # None in one process
        self.compiled = True

    # ------------------------------------------------------------------ steps
    def train_step(self, data: tuple) -> None:
        """One optimizer step on ``data = (x, y, sample_weight)``; metric state is updated in place."""
        x, y, sample_weight = data
        with self._precision.autocast():  # a no-op unless a mixed dtype_policy is set
            y_pred = self.forward(x)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self._precision.backward_and_step(loss, self.optimizer)  # loss scaling for mixed_float16
        self.update_metrics(y, y_pred, sample_weight)

    def test_step(self, data: tuple) -> None:
        """Loss and metrics on ``data`` without updating the weights."""
        x, y, sample_weight = data
        with self._precision.autocast():
            y_pred = self.forward(x)
            if self._compiled_loss is not None:
                self.compute_loss(x, y, y_pred, sample_weight)
        self.update_metrics(y, y_pred, sample_weight)

    def predict_step(self, data: tuple) -> Any:
        x, _, _ = data
        precision = getattr(self, "_precision", None)  # predict needs no compile()
        with precision.autocast() if precision is not None else contextlib.nullcontext():
            return self.forward(x)

    def forward(self, x: Any) -> Any:
        """Call the module: a tuple/list as positional inputs, a dict as keyword inputs when the
        forward takes those names, as one dict when it takes one input and none of those names
        (a ValueError otherwise), anything else as the single input. Under several processes,
        a forward that records gradients runs through DDP, which all-reduces them in backward."""
        module = self._ddp if self._ddp is not None and torch.is_grad_enabled() else self.module
        return module_inputs.call(module, x, signature_of=self.module)

    def compute_loss(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """The compiled loss; updates the loss trackers (batch-size weighted, on the device)."""
        if self._compiled_loss is None:
            raise ValueError(
                "This model was compiled without a loss, so it cannot train or compute a loss. "
                "Pass loss=... to compile(). Received: loss=None"
            )
        if y is None:
            raise ValueError(
                "The loss needs targets, but no `y` was given. Pass y=... (or have the data "
                "yield (x, y) batches). Received: y=None"
            )
        self._build(y, y_pred)
        if self._check_next_batch:
            self._first_batch_checks(y, y_pred)
        total, per_output = self._compiled_loss(y, y_pred, sample_weight)
        batch_size = (x if isinstance(x, torch.Tensor) else flatten(x)[0]).shape[0]
        self._loss_tracker.update_state(total.detach(), sample_weight=batch_size)
        for tracker, value in zip(self._output_loss_trackers, per_output):
            if value is not None:
                tracker.update_state(value.detach(), sample_weight=batch_size)
        return total

    def update_metrics(self, y: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if self._compiled_metrics is None or y is None:
            return
        self._build(y, y_pred)
        cast = self._precision.float32 if self._precision.enabled else _identity  # metrics in float32 (Keras)
        if isinstance(y_pred, torch.Tensor):  # one output, the common case
            detached = cast(y_pred.detach())
        else:
            detached = map_structure(lambda t: cast(t.detach()) if isinstance(t, torch.Tensor) else t, y_pred)
        self._compiled_metrics.update_state(y, detached, sample_weight)

    def _build(self, y: Any, y_pred: Any) -> None:
        loss = self._compiled_loss
        if loss is not None and not loss.built:
            loss.build(y, y_pred)
            if loss.names is not None:
                self._output_loss_trackers = [metrics_module.Mean(name=f"{n}_loss").to(self.device) for n in loss.names]
        if self._compiled_metrics is not None and not self._compiled_metrics.built:
            self._compiled_metrics.build(y, y_pred, self.device)
            distributed.disable_foreign_sync(self.metrics)  # torchmetrics: synced once per epoch instead

    def _first_batch_checks(self, y: Any, y_pred: Any) -> None:
        # One host sync per run: logits fed to a probability loss, sparse labels in range.
        self._check_next_batch = False
        self._compiled_loss.check_first_batch(y, y_pred)
        if self._labels_to_check is not None:
            self._compiled_loss.check_labels(self._labels_to_check)
            self._labels_to_check = None

    # ------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> list:
        """The loss tracker(s), then the compiled metrics, in History's order."""
        trackers = [self._loss_tracker] if self._compiled_loss is not None else []
        compiled = [m for _, m, _ in self._compiled_metrics.entries] if self._compiled_metrics else []
        return trackers + self._output_loss_trackers + compiled

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> dict[str, torch.Tensor]:
        """Current metric values as device tensors (no host sync)."""
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ fit / evaluate / predict
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int | list = 1,
    ):
        """Train for ``epochs`` epochs, as Keras' ``fit``; returns a ``tc.callbacks.History``.

        The epoch ``loss`` is the batch-size-weighted mean of the batch losses; metrics
        accumulate over the epoch; validation runs after each epoch with the end-of-epoch
        weights, in eval mode under ``torch.no_grad``, and its keys get a ``val_`` prefix.
        """
        self._assert_compiled("fit")
        _check_verbose(verbose)
        if self._compiled_loss is None:
            raise ValueError("fit() needs a loss: call compile(loss=...) first. Received: loss=None")
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = validation.split(x, y, sample_weight, validation_split)
        train_iterator = self._epoch_iterator(
            x, y, sample_weight, batch_size, steps_per_epoch, shuffle=shuffle, class_weight=class_weight, training=True
        )
        train_iterator.check_passes(epochs - initial_epoch, "steps_per_epoch")
        val_iterator = None
        if validation_data is not None:
            vx, vy, vsw, vbs = validation.unpack(validation_data, validation_batch_size, batch_size)
            val_iterator = self._epoch_iterator(vx, vy, vsw, vbs, validation_steps)
            validations = sum(validation.should_validate(e, validation_freq) for e in range(initial_epoch, epochs))
            val_iterator.check_passes(validations, "validation_steps", source="validation_data")
        callbacks = CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=train_iterator.num_steps,
        )
        self.stop_training = False
        self._resume_point = None  # BackupAndRestore sets it in on_train_begin (engine/loop.py uses it)
        summary_module.record_shapes_once(self.module)  # one-shot hooks: summary() shows shapes after fit
        train_fn = self._step_function("train")
        callbacks.on_train_begin()
        if self._resume_point is not None:
            initial_epoch = max(initial_epoch, self._resume_point.initial_epoch)
        epoch_logs: dict = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            self._begin_run(train_iterator)
            with loop.mode(self.module, training=True):
                loop.run_epoch(self, "train", train_iterator, callbacks, train_fn)
            self.stop_training = distributed.end_epoch(self.module, self.metrics, self.stop_training)
            epoch_logs = loop.pythonify_logs(self.get_metrics_result())  # host sync, once per epoch
            if val_iterator is not None and validation.should_validate(epoch, validation_freq):
                val_logs = self._run_evaluation(val_iterator, callbacks)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        with torch.no_grad():
            optimizers_module.finalize_variable_values(self.optimizer)  # use_ema: weights ← their average
        callbacks.on_train_end(epoch_logs)
        return callbacks.history

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: list | None = None,
        return_dict: bool = False,
    ):
        """Loss and metrics over the data: a scalar, a list ``[loss, metric, ...]`` or a dict."""
        self._assert_compiled("evaluate")
        _check_verbose(verbose)
        iterator = self._epoch_iterator(x, y, sample_weight, batch_size, steps)
        callbacks = CallbackList(
            callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1, steps=iterator.num_steps
        )
        logs = self._run_evaluation(iterator, callbacks)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: list | None = None,
    ):
        """The module's outputs over ``x`` as NumPy arrays (its output structure), batches concatenated."""
        _check_verbose(verbose)
        iterator = self._epoch_iterator(x, None, None, batch_size, steps)
        callbacks = CallbackList(
            callbacks, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=1, steps=iterator.num_steps
        )
        callbacks.on_predict_begin()
        with loop.mode(self.module, training=False):
            outputs = loop.run_epoch(self, "predict", iterator, callbacks, self._step_function("predict"))
        callbacks.on_predict_end()
        if not outputs:
            raise ValueError(
                "predict() got no batches from `x`; pass data with at least one sample. "
                f"Received: x of type {type(x).__name__}"
            )
        sharding = getattr(iterator.adapter, "sharding", None)  # several processes: each predicted its share
        predictions = loop.concatenate_outputs(outputs)
        return predictions if sharding is None else distributed.gather_predictions(predictions, sharding)

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ):
        """One optimizer step on one batch; returns its loss and metrics (metrics reset first)."""
        self._assert_compiled("train_on_batch")
        if class_weight is not None and sample_weight is not None:
            raise ValueError(
                f"Pass either `sample_weight` or `class_weight`, not both. Received: class_weight={class_weight}"
            )
        batch = self._single_batch(x, y, sample_weight)
        if class_weight is not None:
            batch = (batch[0], batch[1], data_adapters.class_weight_to_sample_weight(batch[1], class_weight))
        self.reset_metrics()
        self._check_next_batch = True
        with loop.mode(self.module, training=True):
            self.train_step(self.prepare_batch(batch, "train"))
        return self._batch_result(return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False):
        """Loss and metrics on one batch, without updating the weights."""
        self._assert_compiled("test_on_batch")
        batch = self._single_batch(x, y, sample_weight)
        self.reset_metrics()
        self._check_next_batch = True
        with loop.mode(self.module, training=False):
            self.test_step(self.prepare_batch(batch, "test"))
        return self._batch_result(return_dict)

    def predict_on_batch(self, x: Any):
        """The module's output on one batch, as NumPy arrays."""
        batch = (data_adapters.to_tensors(x), None, None)
        with loop.mode(self.module, training=False):
            output = self.predict_step(self.prepare_batch(batch, "predict"))
        return loop.concatenate_outputs([output])

    # ------------------------------------------------------------------ helpers for the loop
    def prepare_batch(self, batch: tuple, mode: str) -> tuple:
        """Check a CPU batch's labels (no device sync), then move it to the model's device."""
        if (
            self._check_labels_per_batch
            and mode != "predict"
            and batch[1] is not None
            and self._compiled_loss is not None
            and self._compiled_loss.built
        ):
            self._compiled_loss.check_labels(batch[1])
        return to_device(batch, self.device)

    def _epoch_iterator(self, x, y, sample_weight, batch_size, steps, shuffle=False, class_weight=None, training=False):
        sharding = distributed.sharding_for(x, batch_size, steps, training)  # None in one process
        adapter = data_adapters.get_data_adapter(
            x, y, sample_weight, batch_size, shuffle, class_weight, self.device, steps=steps, sharding=sharding
        )
        # Training carries a partly read pass into the next epoch; evaluation starts afresh (Keras).
        return EpochIterator(adapter, steps, carry_over=training)

    def _begin_run(self, iterator: EpochIterator) -> None:
        adapter = iterator.adapter
        self._check_labels_per_batch = isinstance(adapter, data_adapters.IterableDataAdapter)
        if not iterator.checked:  # the first-batch checks (a host sync) run once per fit, not per epoch
            iterator.checked = True
            self._check_next_batch = True
            self._labels_to_check = adapter.labels

    def _run_evaluation(self, iterator: EpochIterator, callbacks: CallbackList) -> dict:
        self.reset_metrics()
        self._begin_run(iterator)
        callbacks.on_test_begin()
        with loop.mode(self.module, training=False):
            loop.run_epoch(self, "test", iterator, callbacks, self._step_function("test"))
        distributed.all_reduce_metrics(self.metrics)  # several processes: global values
        logs = loop.pythonify_logs(self.get_metrics_result())  # host sync, once per evaluation
        callbacks.on_test_end(logs)
        return logs

    def _step_function(self, mode: str):
        """The step for ``mode``: eager, through torch.compile, and/or run in captured groups."""
        step = {"train": self.train_step, "test": self.test_step, "predict": self.predict_step}[mode]
        graphs = mode == "train" and getattr(self, "cuda_graph", False)
        if not (self.jit_compile or graphs):
            return step
        if mode not in self._jit_steps:  # built once per compile(), kept across fit() calls
            custom = type(self).train_step is not Model.train_step
            self._jit_steps[mode] = execution.step_function(self, step, graphs, custom)
        return self._jit_steps[mode]

    def _single_batch(self, x: Any, y: Any, sample_weight: Any) -> tuple:
        x, y, sample_weight = (data_adapters.to_tensors(a) for a in (x, y, sample_weight))
        data_adapters.check_lengths(x, y, sample_weight)
        return x, y, sample_weight

    def _batch_result(self, return_dict: bool):
        logs = loop.pythonify_logs(self.get_metrics_result())
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _assert_compiled(self, method: str) -> None:
        if not self.compiled:
            raise RuntimeError(
                f"You must call compile() before {method}(): the model needs an optimizer "
                "and a loss. Call model.compile(optimizer=..., loss=...). "
                f"Received: {method}() on an uncompiled model"
            )

    # ------------------------------------------------------------------ weights and saving (saving.py)
    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """The module's state_dict as a plain torch file (``torch.load(weights_only=True)`` reads it)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load a state_dict file (ours or plain torch's); all or nothing, mismatching keys named."""
        saving.load_weights(self, filepath)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Weights, optimizer state, compile configuration and epoch; ``tc.load_model`` resumes from it."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def get_weights(self) -> list:
        """Every state_dict entry (parameters and buffers), in order, as NumPy arrays (Keras)."""
        return saving.get_weights(self.module)

    def set_weights(self, weights: list) -> None:
        """Set every state_dict entry from ``get_weights()``-shaped arrays; count and shapes checked."""
        saving.set_weights(self.module, weights)

    def summary(
        self, input_shape: Any = None, line_length: int | None = None, print_fn: Any = None, expand_nested: bool = False
    ) -> None:
        """Keras' table: submodules, output shapes (from the first batch, or ``input_shape``), parameters."""
        summary_module.print_summary(
            self, input_shape=input_shape, line_length=line_length, print_fn=print_fn, expand_nested=expand_nested
        )


class Sequential(Model):
    """``tc.Sequential([layer, ...])``: an ``nn.Sequential`` of the layers, wrapped."""

    def __init__(self, layers: list[nn.Module] | None = None, device: str | torch.device = "auto"):
        super().__init__(nn.Sequential(*(layers or [])), device=device)


def _identity(value: Any) -> Any:
    return value


def _check_verbose(verbose: Any) -> None:
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
