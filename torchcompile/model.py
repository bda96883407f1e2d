# SPDX-License-Identifier: Apache-2.0
"""tc.Model: any torch.nn.Module with Keras' compile / fit / evaluate / predict.

Owns: wrapping the module and its device, compile() (built by engine/compiled.py), argument
checks for fit/evaluate/predict, and what users may override as in Keras: ``train_step`` /
``test_step`` / ``predict_step``, ``compute_loss``, the ``metrics`` list; plus ``*_on_batch``.
Not: running the epochs (engine/run.py), one epoch's batches (engine/loop.py), batching
(engine/data_adapters.py), files (saving.py, through model_io.py), the arithmetic of losses
and metrics.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchcompile import summary as summary_module
from torchcompile.callbacks.callback_list import CallbackList
from torchcompile.core.overrides import overrides
from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine import compiled as compiled_module
from torchcompile.engine import data_adapters, distributed, loop, module_inputs, run
from torchcompile.engine.device import resolve_device, to_device
from torchcompile.model_io import ModelIO


class Model(ModelIO):
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
        self.stop_training = False
        self.history = None
        self._compiled: compiled_module.Compiled | None = None

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
        self._compiled = compiled_module.compile_model(
            self.module, self.device, optimizer, loss, loss_weights, metrics, weighted_metrics,
            jit_compile, steps_per_execution, cuda_graph, dtype_policy,
        )  # fmt: skip

    def get_compile_config(self) -> dict[str, Any] | None:
        """compile()'s arguments as given (the optimizer as built), or None before compile (Keras)."""
        return dict(self._compiled.config) if self._compiled is not None else None

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return self._compiled.optimizer if self._compiled is not None else None

    jit_compile = property(lambda self: self._setting("jit_compile", False))
    steps_per_execution = property(lambda self: self._setting("steps_per_execution", 1))
    cuda_graph = property(lambda self: self._setting("cuda_graph", False))
    dtype_policy = property(lambda self: self._setting("dtype_policy", None))

    def _setting(self, name: str, default: Any) -> Any:
        return self._compiled.config[name] if self._compiled is not None else default

    # ------------------------------------------------------------------ steps
    def train_step(self, data: tuple) -> None:
        """One optimizer step on ``data = (x, y, sample_weight)``; metric state is updated in place."""
        x, y, sample_weight = data
        precision = self._compiled.precision
        with precision.autocast():  # a no-op unless a mixed dtype_policy is set
            y_pred = self.forward(x)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        self.optimizer.zero_grad(set_to_none=True)
        precision.backward_and_step(loss, self.optimizer)  # loss scaling for mixed_float16
        self.update_metrics(y, y_pred, sample_weight)

    def test_step(self, data: tuple) -> None:
        """Loss and metrics on ``data`` without updating the weights."""
        x, y, sample_weight = data
        with self._compiled.precision.autocast():
            y_pred = self.forward(x)
            if self._compiled.loss is not None:
                self.compute_loss(x, y, y_pred, sample_weight)
        self.update_metrics(y, y_pred, sample_weight)

    def predict_step(self, data: tuple) -> Any:
        x, _, _ = data
        if self._compiled is None:  # predict needs no compile()
            return self.forward(x)
        with self._compiled.precision.autocast():
            return self.forward(x)

    def forward(self, x: Any) -> Any:
        """Call the module: a tuple/list as positional inputs, a dict as keyword inputs when the
        forward takes those names, as one dict when it takes one input and none of those names
        (a ValueError otherwise), anything else as the single input. Under several processes,
        a forward that records gradients runs through DDP, which all-reduces them in backward."""
        ddp = self._compiled.ddp if self._compiled is not None else None
        module = ddp if ddp is not None and torch.is_grad_enabled() else self.module
        return module_inputs.call(module, x, signature_of=self.module)

    def compute_loss(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """The compiled loss; updates the loss trackers (batch-size weighted, on the device)."""
        compiled_loss = self._compiled.loss
        if compiled_loss is None:
            raise ValueError(
                "This model was compiled without a loss, so it cannot train or compute a loss. "
                "Pass loss=... to compile(). Received: loss=None"
            )
        if y is None:
            raise ValueError(
                "The loss needs targets, but no `y` was given. Pass y=... (or have the data "
                "yield (x, y) batches). Received: y=None"
            )
        total = compiled_loss(y, y_pred, sample_weight)
        batch_size = (x if isinstance(x, torch.Tensor) else flatten(x)[0]).shape[0]
        self._compiled.loss_tracker.update_state(total.detach(), sample_weight=batch_size)
        return total

    def update_metrics(self, y: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if y is None:
            return
        precision = self._compiled.precision
        cast = precision.float32 if precision.enabled else _identity  # metrics in float32 (Keras)
        if isinstance(y_pred, torch.Tensor):  # one output, the common case
            detached = cast(y_pred.detach())
        else:
            detached = map_structure(lambda t: cast(t.detach()) if isinstance(t, torch.Tensor) else t, y_pred)
        self._compiled.metrics.update_state(y, detached, sample_weight)

    # ------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> list:
        """The loss tracker(s), then the compiled metrics, in History's order."""
        return self._compiled.tracked_metrics() if self._compiled is not None else []

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
        self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
        verbose: int | str = "auto", callbacks: list | None = None, validation_split: float = 0.0,
        validation_data: Any = None, shuffle: bool = True, class_weight: dict | None = None,
        sample_weight: Any = None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
        validation_steps: int | None = None, validation_batch_size: int | None = None,
        validation_freq: int | list = 1,
    ):  # fmt: skip
        """Train for ``epochs`` epochs, as Keras' ``fit``; returns a ``tc.callbacks.History``.

        The epoch ``loss`` is the batch-size-weighted mean of the batch losses; metrics
        accumulate over the epoch; validation runs after each epoch with the end-of-epoch
        weights, in eval mode under ``torch.no_grad``, and its keys get a ``val_`` prefix.
        """
        self._assert_compiled("fit")
        _check_verbose(verbose)
        if self._compiled.loss is None:
            raise ValueError("fit() needs a loss: call compile(loss=...) first. Received: loss=None")
        train, val = run.fit_iterators(
            x, y, sample_weight, batch_size, epochs, initial_epoch, self.device, shuffle, class_weight,
            steps_per_epoch, validation_split, validation_data, validation_steps, validation_batch_size,
            validation_freq,
        )  # fmt: skip
        callbacks = self._callbacks(callbacks, verbose, epochs, train.num_steps, history=True)
        summary_module.record_shapes_once(self.module)  # one-shot hooks: summary() shows shapes after fit
        self.history = self._run(callbacks).fit(train, epochs, initial_epoch, val, validation_freq)
        return self.history

    def evaluate(
        self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int | str = "auto",
        sample_weight: Any = None, steps: int | None = None, callbacks: list | None = None,
        return_dict: bool = False,
    ):  # fmt: skip
        """Loss and metrics over the data: a scalar, a list ``[loss, metric, ...]`` or a dict."""
        self._assert_compiled("evaluate")
        _check_verbose(verbose)
        iterator = run.data_iterator(x, y, sample_weight, batch_size, steps, self.device)
        logs = self._run(self._callbacks(callbacks, verbose, 1, iterator.num_steps)).evaluate(iterator)
        return _logs_result(logs, return_dict)

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: int | str = "auto", steps: int | None = None,
        callbacks: list | None = None,
    ):  # fmt: skip
        """The module's outputs over ``x`` as NumPy arrays (its output structure), batches concatenated."""
        _check_verbose(verbose)
        iterator = run.data_iterator(x, None, None, batch_size, steps, self.device)
        outputs = self._run(self._callbacks(callbacks, verbose, 1, iterator.num_steps)).predict(iterator)
        if not outputs:
            raise ValueError(
                "predict() got no batches from `x`; pass data with at least one sample. "
                f"Received: x of type {type(x).__name__}"
            )
        sharding = getattr(iterator.adapter, "sharding", None)  # several processes: each predicted its share
        predictions = loop.concatenate_outputs(outputs)
        return predictions if sharding is None else distributed.gather_predictions(predictions, sharding)

    def train_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: dict | None = None,
        return_dict: bool = False,
    ):  # fmt: skip
        """One optimizer step on one batch; returns its loss and metrics (metrics reset first)."""
        self._assert_compiled("train_on_batch")
        batch = run.single_batch(x, y, sample_weight, class_weight)
        self.reset_metrics()
        self._compiled.request_checks()
        with loop.mode(self.module, training=True):
            self.train_step(to_device(batch, self.device))
        return _logs_result(loop.pythonify_logs(self.get_metrics_result()), return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False):
        """Loss and metrics on one batch, without updating the weights."""
        self._assert_compiled("test_on_batch")
        batch = run.single_batch(x, y, sample_weight)
        self.reset_metrics()
        self._compiled.request_checks()
        with loop.mode(self.module, training=False):
            self.test_step(to_device(batch, self.device))
        return _logs_result(loop.pythonify_logs(self.get_metrics_result()), return_dict)

    def predict_on_batch(self, x: Any):
        """The module's output on one batch, as NumPy arrays."""
        batch = (data_adapters.to_tensors(x), None, None)
        with loop.mode(self.module, training=False):
            output = self.predict_step(to_device(batch, self.device))
        return loop.concatenate_outputs([output])

    # ------------------------------------------------------------------ helpers
    def _run(self, callbacks: CallbackList) -> run.Run:
        return run.Run(self, self._compiled, callbacks, custom_train_step=overrides(self, Model, "train_step"))

    def _callbacks(self, callbacks: Any, verbose: Any, epochs: int, steps: Any, history: bool = False):
        return CallbackList(
            callbacks, add_history=history, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=epochs,
            steps=steps,
        )  # fmt: skip

    def _assert_compiled(self, method: str) -> None:
        if self._compiled is None:
            raise RuntimeError(
                f"You must call compile() before {method}(): the model needs an optimizer "
                "and a loss. Call model.compile(optimizer=..., loss=...). "
                f"Received: {method}() on an uncompiled model"
            )


class Sequential(Model):
    """``tc.Sequential([layer, ...])``: an ``nn.Sequential`` of the layers, wrapped."""

    def __init__(self, layers: list[nn.Module] | None = None, device: str | torch.device = "auto"):
        super().__init__(nn.Sequential(*(layers or [])), device=device)


def _identity(value: Any) -> Any:
    return value


def _logs_result(logs: dict[str, Any], return_dict: bool) -> Any:
    """evaluate's and ``*_on_batch``'s return: the dict, or its values (a scalar when there is one)."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _check_verbose(verbose: Any) -> None:
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise ValueError(f"`verbose` must be 0, 1, 2 or 'auto'. Received: verbose={verbose!r}")
