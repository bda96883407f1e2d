# SPDX-License-Identifier: Apache-2.0
"""tc.Model: a torch.nn.Module with Keras' compile / fit / evaluate / predict.

Owns: wrapping the user's module (a registered child) and the device, compile() (built by
engine/compiled.py), argument checks for fit/evaluate/predict, and Keras 3's overridable
contract: ``train_step`` / ``test_step`` / ``predict_step``, ``compute_loss``,
``compute_metrics``, the ``metrics`` list; plus ``*_on_batch``. Not: running the epochs
(engine/run.py), batching (engine/data_adapters.py), weights, names and files (model_io.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchcompile import summary as summary_module
from torchcompile.callbacks.callback_list import CallbackList
from torchcompile.core.batches import unpack_x_y_sample_weight
from torchcompile.core.overrides import overrides
from torchcompile.core.registry import to_snake_case
from torchcompile.engine import compiled as compiled_module
from torchcompile.engine import distributed, loop, module_inputs, outputs, run
from torchcompile.engine.device import resolve_device
from torchcompile.metrics.metric import Metric
from torchcompile.model_io import ModelIO


class Model(ModelIO, nn.Module):
    """Wraps ``module`` (any ``torch.nn.Module``) and moves it to ``device`` once.

    A ``torch.nn.Module`` itself (``state_dict()`` keys are the module's under ``module.``; ``to()``
    also moves optimizer and metric state). Keras' ``compile`` shadows torch's ``nn.Module.compile``.

    Args:
        module: the network; `model.module` is this very object. A subclass that builds its
            own submodules (Keras' subclassing) passes none, and is its own network.
        device: "auto" (CUDA when available, else CPU), a string or a ``torch.device``.
        name: Keras' model name (default: the snake_case class name, made unique).

    Example:
        >>> model = Model(torch.nn.Linear(4, 1), device="cpu")
        >>> model.compile(optimizer="sgd", loss="mse")
    """

    def __init__(self, module: nn.Module | None = None, device: str | torch.device = "auto", name: str | None = None,
                 distribution: Any = None):  # fmt: skip
        super().__init__()
        if module is not None and not isinstance(module, nn.Module):
            raise TypeError(
                "tc.Model wraps a torch.nn.Module; build your network as one (or use "
                f"tc.Sequential([...])). Received: module of type {type(module).__name__}"
            )
        self.distribution = distribution  # None: DDP under torchrun; "fsdp" shards (docs/distributed.md)
        self.name = self._default_name(name, to_snake_case(type(self).__name__))
        self.device = distributed.setup(resolve_device(device))  # under torchrun: the group, cuda:LOCAL_RANK
        self.stop_training, self.history, self._compiled = False, None, None
        if module is not None:  # FSDP shards it now, so an optimizer built after holds the shards (a subclass
            self.module = module.to(self.device)  # that is its own network is sharded at compile)
            distributed.shard(self.module, self.device, distribution)

    @property
    def module(self) -> nn.Module:
        """The wrapped module, or the model itself when it is its own network."""
        return self._modules.get("module", self)

    def forward(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        """``model(x)``: the module's forward (a tuple/list ``x`` as positional inputs, a dict as
        keyword inputs when the forward takes those names). ``training`` is Keras': passed on when
        the forward takes it, else dropped after switching train/eval mode as Keras' torch wrapper
        does. Under several processes, a forward that records gradients runs through DDP."""
        module, compiled = self.module, self._compiled
        if module is self:
            return module_inputs.forward(self, args, kwargs, training, method="call")
        ddp = compiled.ddp if compiled is not None and torch.is_grad_enabled() else None
        return module_inputs.forward(module, args, kwargs, training, through=ddp)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Keras' forward for a subclass that is its own network: override it (or ``forward``)."""
        raise NotImplementedError(
            f"{type(self).__name__} wraps no module, so it computes through call(); define "
            f"call(self, inputs) or forward, or pass a module: tc.Model(module). Received: module=None"
        )

    def _apply(self, fn: Any, recurse: bool = True) -> Model:
        # .to() / .cuda() / .double(): the optimizer's and the compiled metrics' state move too.
        super()._apply(fn, recurse)
        self.device = fn(torch.empty(0, device=self.__dict__.get("device", "cpu"))).device
        if self.__dict__.get("_compiled") is not None:
            self._compiled.apply(fn)
        return self

    # ------------------------------------------------------------------ compile
    def compile(
        self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None, metrics: Any = None,
        weighted_metrics: Any = None, run_eagerly: bool = False, steps_per_execution: int = 1,
        jit_compile: bool | str = False, auto_scale_loss: bool = True, cuda_graph: bool = False,
        dtype_policy: Any = None, gradient_accumulation_steps: int | None = None,
    ) -> None:  # fmt: skip
        """Configure training, as Keras' ``compile`` (same argument order); recompiling keeps the weights.

        `model.optimizer` becomes a real ``torch.optim.Optimizer`` over the parameters. String
        ids are checked now; "accuracy" and "crossentropy" resolve from the first batch's
        shapes (Keras). ``jit_compile=True`` runs the steps through ``torch.compile`` (eagerly,
        with a warning, where it cannot); ``run_eagerly=True`` turns it and CUDA graphs off.
        ``steps_per_execution`` groups steps: batch hooks run once per group (Keras); with
        ``cuda_graph=True`` on CUDA each group replays as one captured CUDA graph. ``dtype_policy``
        defaults to ``tc.mixed_precision.global_policy()``; ``auto_scale_loss`` scales the loss
        under mixed_float16 (Keras); ``gradient_accumulation_steps`` (ours) accumulates for any
        optimizer. This shadows torch's in-place ``nn.Module.compile``.
        """
        self._compiled = compiled_module.compile_model(
            self, self.device, optimizer, loss, loss_weights, metrics, weighted_metrics, run_eagerly,
            steps_per_execution, jit_compile, auto_scale_loss, cuda_graph, dtype_policy, gradient_accumulation_steps,
        )  # fmt: skip

    def get_compile_config(self) -> dict[str, Any] | None:
        """compile()'s arguments as given (the optimizer as built), or None before compile (Keras)."""
        return dict(self._compiled.config) if self._compiled is not None else None

    compiled = property(lambda self: self._compiled is not None, doc="Whether compile() was called.")
    optimizer = property(lambda self: self._setting("optimizer", None), doc="The torch optimizer compile() built.")
    jit_compile = property(lambda self: self._setting("jit_compile", False))
    steps_per_execution = property(lambda self: self._setting("steps_per_execution", 1))
    cuda_graph = property(lambda self: self._setting("cuda_graph", False))
    dtype_policy = property(lambda self: self._setting("dtype_policy", None))

    def _setting(self, name: str, default: Any) -> Any:
        return self._compiled.config[name] if self.__dict__.get("_compiled") is not None else default

    # ------------------------------------------------------------------ steps (Keras 3's contract)
    def train_step(self, data: Any) -> Any:
        """One optimizer step on a batch as the data yields it; returns the logs (Keras)."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        compiled = self._compiled
        with compiled.precision.autocast():  # a no-op unless a mixed dtype_policy is set
            y_pred = self.forward(
                module_inputs.with_labels(self.module, x, y), training=True
            )  # self(...) minus hook checks
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        compiled.track_loss(loss, x)
        if compiled.needs_closure:  # LBFGS evaluates the loss itself (torch.optim's closure protocol)
            self.optimizer.step(lambda: self._closure_loss(x, y, sample_weight))
        else:
            compiled.backward_and_step(loss)  # zero_grad, backward (scaled for mixed_float16), step
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data: Any) -> Any:
        """Loss and metrics on a batch, without updating the weights; returns the logs."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        with self._compiled.precision.autocast():
            y_pred = self.forward(module_inputs.with_labels(self.module, x, y), training=False)
            if self._compiled.loss is not None or outputs.carried_loss(y_pred) is not None:
                self._compiled.track_loss(self.compute_loss(x, y, y_pred, sample_weight, training=False), x)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data: Any) -> Any:
        """The forward output on a batch's ``x``."""
        x, _, _ = unpack_x_y_sample_weight(data)
        if self._compiled is None:  # predict needs no compile()
            return self(x, training=False)
        with self._compiled.precision.autocast():
            return self(x, training=False)

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> torch.Tensor:
        """The compiled loss (it computes; the default steps track it). With ``compile(loss=None)``,
        the loss the module's output carries (a ``loss`` attribute or key), as Hugging Face models'."""
        compiled_loss = self._compiled.loss
        if compiled_loss is None:
            carried = outputs.carried_loss(y_pred)
            if carried is not None:
                return carried
            raise ValueError(
                "No loss to compute: compile() got no loss and the module's output carries none. "
                "Pass loss=... to compile(). Received: loss=None"
            )
        if y is None:
            raise ValueError(
                "The loss needs targets, but no `y` was given. Pass y=... (or have the data "
                "yield (x, y) batches). Received: y=None"
            )
        return compiled_loss(y, y_pred, sample_weight)

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Update the compiled metrics; return the logs: every metric's result, computed when read."""
        if y is not None:
            self._compiled.update_metrics(y, y_pred, sample_weight)
        return loop.LazyLogs(lambda: self.metrics)

    def _closure_loss(self, x: Any, y: Any, sample_weight: Any) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.compute_loss(x, y, self(x, training=True), sample_weight)
        loss.backward()
        return loss

    # ------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> list:
        """Keras' order: the loss tracker, the compiled metrics (one ``CompileMetrics``), the per-output
        loss trackers, then metrics held as attributes. A subclass may list its own instead."""
        own = [m for m in self._modules.values() if isinstance(m, Metric)]
        return (self._compiled.tracked_metrics() if self._compiled is not None else []) + own

    @property
    def metrics_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def reset_metrics(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> dict[str, Any]:
        """Current metric values as device tensors (no host sync); a dict result is flattened (Keras)."""
        return loop.metrics_results(self.metrics)

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
        run.check_fit_arguments(self, verbose, epochs, custom_train_step=overrides(self, Model, "train_step"))
        train, val = run.fit_iterators(
            self, x, y, sample_weight, batch_size, epochs, initial_epoch, shuffle, class_weight,
            steps_per_epoch, validation_split, validation_data, validation_steps, validation_batch_size,
            validation_freq,
        )  # fmt: skip
        summary_module.record_shapes_once(self.module)  # one-shot hooks: summary() shows shapes after fit
        fit_run = self._run(callbacks, verbose, epochs, train.num_steps, history=True)
        self.history = fit_run.fit(train, epochs, initial_epoch, val, validation_freq)
        return self.history

    def evaluate(
        self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int | str = "auto",
        sample_weight: Any = None, steps: int | None = None, callbacks: list | None = None,
        return_dict: bool = False,
    ):  # fmt: skip
        """Loss and metrics over the data: a scalar, a list ``[loss, metric, ...]`` or a dict."""
        run.check_fit_arguments(self, verbose, method="evaluate")
        iterator = run.data_iterator(self, x, y, sample_weight, batch_size, steps)
        logs = self._run(callbacks, verbose, 1, iterator.num_steps).evaluate(iterator)
        return run.logs_result(logs, return_dict, self.metrics)

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: int | str = "auto", steps: int | None = None,
        callbacks: list | None = None,
    ):  # fmt: skip
        """The module's outputs over ``x`` as NumPy arrays (its output structure), batches concatenated."""
        run.check_fit_arguments(self, verbose, method="predict")
        iterator = run.data_iterator(self, x, None, None, batch_size, steps)
        return self._run(callbacks, verbose, 1, iterator.num_steps).predict(iterator, x)

    def train_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, class_weight: dict | None = None,
        return_dict: bool = False,
    ):  # fmt: skip
        """One optimizer step on one batch; returns its loss and metrics (metrics reset first)."""
        run.check_fit_arguments(self, 0, method="train_on_batch")
        return self._run().on_batch("train", run.single_batch(self, x, y, sample_weight, class_weight), return_dict)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False):
        """Loss and metrics on one batch, without updating the weights."""
        run.check_fit_arguments(self, 0, method="test_on_batch")
        return self._run().on_batch("test", run.single_batch(self, x, y, sample_weight), return_dict)

    def predict_on_batch(self, x: Any):
        """The module's output on one batch, as NumPy arrays."""
        return self._run().on_batch("predict", run.single_batch(self, x, None, None), False)

    def _run(self, callbacks: Any = None, verbose: Any = 0, epochs: int = 1, steps: Any = None, history=False):
        callbacks = CallbackList(
            callbacks, add_history=history, add_progbar=verbose != 0, model=self, verbose=verbose, epochs=epochs,
            steps=steps,
        )  # fmt: skip
        overridden = [name for name in run.STEP_METHODS if overrides(self, Model, name)]
        return run.Run(self, self._compiled, callbacks, overridden=overridden)


class Sequential(Model):
    """``tc.Sequential([layer, ...])``: an ``nn.Sequential`` of the layers, wrapped; ``add`` appends."""

    def __init__(self, layers: list[nn.Module] | None = None, device: str | torch.device = "auto", name=None):
        super().__init__(nn.Sequential(*(layers or [])), device=device, name=name)

    def add(self, layer: nn.Module) -> None:
        """Append ``layer`` (Keras' ``Sequential.add``), moved to the model's device."""
        self.module.append(layer.to(self.device))
