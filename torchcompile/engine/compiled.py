# SPDX-License-Identifier: Apache-2.0
"""What ``Model.compile`` builds for one model, in one object the engine reads.

Owns: checking compile's arguments, the torch optimizer over the module's parameters, the
compiled loss and metrics (engine/compile_utils.py), the total loss tracker, the precision
policy's autocast and scaler, the DDP wrapper under several processes, the execution
settings (``jit_compile``, ``steps_per_execution``, ``cuda_graph``) and the cache of step
functions built from them. Not: what a step computes (``Model.train_step``) or how it runs
(engine/execution.py).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchcompile import metrics as metrics_module
from torchcompile import mixed_precision
from torchcompile import optimizers as optimizers_module
from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine import accumulation as accumulation_module
from torchcompile.engine import compile_utils, distributed
from torchcompile.engine.compile_utils import CompiledLoss, CompiledMetrics
from torchcompile.optimizers.optimizer import check_gradient_accumulation_steps
from torchcompile.optimizers.step_hooks import hooks_of


@dataclass
class Compiled:
    """compile()'s result. ``config`` keeps its arguments as given (``Model.get_compile_config``)."""

    optimizer: torch.optim.Optimizer | None
    loss: CompiledLoss | None
    metrics: CompiledMetrics
    loss_tracker: Any
    precision: mixed_precision.Precision
    ddp: Any  # DistributedDataParallel over the module under several processes, else None
    jit_compile: bool
    steps_per_execution: int
    cuda_graph: bool
    needs_closure: bool  # the optimizer's step takes a closure (torch.optim.LBFGS)
    trainable: bool  # some parameter requires grad (as compile() found them)
    config: dict[str, Any]
    loss_tracked: bool = False  # the loss tracker got a value (a carried loss, with compile(loss=None))
    step_functions: dict[str, Any] = field(default_factory=dict)  # built once per compile(), kept across fits
    accumulation: Any = None  # engine/accumulation.GradientAccumulation with gradient_accumulation_steps, else None

    @property
    def first_batch_pending(self) -> bool:
        """Whether the next step must run eagerly: it builds the loss and runs the one-off checks."""
        return self.loss is not None and (not self.loss.built or self.loss.checks_pending)

    def request_checks(self, *labels: Any) -> None:
        """Run the first-batch checks (a host sync) on the next batch that computes the loss."""
        if self.loss is not None:
            self.loss.request_checks(*labels)

    def backward_and_step(self, loss: torch.Tensor) -> None:
        """``zero_grad``, ``loss.backward()`` and one optimizer step (the loss scaled for mixed_float16); a
        model without trainable weights trains nothing, with Keras' warning. With
        ``gradient_accumulation_steps=N``, the gradient adds to the running sum and every N-th call
        updates with the mean (engine/accumulation.py)."""
        if not self.trainable:
            warnings.warn("The model does not have any trainable weights.", UserWarning, stacklevel=3)
            return
        if self.accumulation is not None:
            self.accumulation.backward_and_step(loss)
            return
        self.optimizer.zero_grad(set_to_none=True)
        if self.precision.scaler is None:  # float32 / bfloat16: nothing to scale (the common case, inlined)
            loss.backward()
            self.optimizer.step()
            return
        self.precision.backward_and_step(loss, self.optimizer)

    def track_loss(self, loss: torch.Tensor, x: Any) -> None:
        """The epoch's loss: the batch-size-weighted mean of the batch losses (Keras' loss tracker)."""
        batch_size = (x if isinstance(x, torch.Tensor) else next(t for t in flatten(x) if t is not None)).shape[0]
        self.loss_tracker.update_state(loss.detach(), sample_weight=batch_size)
        self.loss_tracked = True

    def update_metrics(self, y: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """The compiled metrics on detached predictions, in float32 under a mixed policy (Keras)."""
        cast = self.precision.float32 if self.precision.enabled else _identity
        if isinstance(y_pred, torch.Tensor):  # one output, the common case
            detached = cast(y_pred.detach())
        else:
            detached = map_structure(lambda t: cast(t.detach()) if isinstance(t, torch.Tensor) else t, y_pred)
        self.metrics.update_state(y, detached, sample_weight)

    def apply(self, fn: Any) -> None:
        """After ``model.to()`` / ``.double()``: move the metrics' state, and the optimizer's with its params."""
        for metric in self.engine_metrics():
            metric._apply(fn)
        if self.optimizer is not None and self.optimizer.state:
            self.optimizer.load_state_dict(self.optimizer.state_dict())  # torch casts state to each param

    def engine_metrics(self) -> list:
        """Every metric compile() made, one by one (the model's ``metrics`` may list others instead)."""
        return [self.loss_tracker] + (self.loss.metrics if self.loss is not None else []) + self.metrics.metrics

    def tracked_metrics(self) -> list:
        """Keras' order: the loss tracker (when there is a loss), the compiled metrics as one
        ``CompileMetrics`` (built on its first update, so a custom step's ``update_state`` builds it),
        then the per-output loss trackers."""
        # With compile(loss=None), a loss the module's output carries is tracked once it was seen.
        trackers = [self.loss_tracker] if self.loss is not None or self.loss_tracked else []
        return trackers + [self.compile_metrics] + (self.loss.metrics if self.loss is not None else [])

    def __post_init__(self) -> None:
        self.compile_metrics = CompileMetrics(self.metrics)  # one view, not one per `model.metrics` read
        if self.jit_compile:
            # torch.compile leaves the update eager: its per-step host values (Keras' Adam epsilon, the
            # step count) would add graphs guarded on them. Eager steps skip the wrapper's cost.
            self.backward_and_step = torch.compiler.disable(self.backward_and_step)


class CompileMetrics:
    """The compiled metrics as one metric, as Keras' ``CompileMetrics``: ``update_state(y, y_pred,
    sample_weight)`` builds them on first use and updates them all; ``result()`` is a dict of
    their results (flattened into the logs); ``metrics`` lists them."""

    name = "compile_metrics"

    def __init__(self, compiled_metrics: CompiledMetrics):
        self._compiled = compiled_metrics

    @property
    def metrics(self) -> list:
        return self._compiled.metrics

    @property
    def variables(self) -> list[torch.Tensor]:
        return [v for m in self.metrics for v in getattr(m, "variables", [])]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self._compiled.update_state(y_true, y_pred, sample_weight)

    def result(self) -> dict[str, Any]:
        return {m.name: m.result() for m in self.metrics}

    def reset_state(self) -> None:
        for metric in self.metrics:
            metric.reset_state()


def leaf_metrics(metrics: list) -> list:
    """``metrics`` with each ``CompileMetrics`` replaced by the metrics it holds."""
    return [leaf for m in metrics for leaf in (m.metrics if isinstance(m, CompileMetrics) else [m])]


def metric_names_in_order(metrics: list) -> list[str]:
    """The log keys in Keras' ``_flatten_metrics_in_order`` order. Keras names a ``CompileMetrics``'
    metrics without their output prefix, so a multi-output module's metrics match no log key and come
    last, sorted, after the per-output losses; we give the same order."""
    names: list[str] = []
    for m in metrics:
        if isinstance(m, CompileMetrics):
            names += [leaf.name for leaf in m.metrics] if getattr(m._compiled, "names", None) is None else []
        else:
            names.append(m.name)
    return names


def compile_model(
    model: nn.Module,
    device: torch.device,
    optimizer: Any,
    loss: Any,
    loss_weights: Any,
    metrics: Any,
    weighted_metrics: Any,
    run_eagerly: bool,
    steps_per_execution: int,
    jit_compile: bool | str,
    auto_scale_loss: bool,
    cuda_graph: bool,
    dtype_policy: Any,
    gradient_accumulation_steps: int | None = None,
) -> Compiled:
    """Check compile()'s arguments (string ids resolve now, so a typo fails here) and build.

    ``model`` is the ``tc.Model``: the optimizer covers all its parameters, DDP wraps its module.
    """
    if not isinstance(steps_per_execution, int) or isinstance(steps_per_execution, bool) or steps_per_execution < 1:
        raise ValueError(
            f"`steps_per_execution` must be a positive integer. Received: steps_per_execution={steps_per_execution!r}"
        )
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto'. Received: jit_compile={jit_compile!r}")
    compile_utils.check_ids(loss, metrics, weighted_metrics)
    _refuse_unreduced_losses(loss)
    policy = mixed_precision.get(dtype_policy or mixed_precision.global_policy())
    graphs = bool(cuda_graph) and not run_eagerly
    # FSDP: shard (if not done when the model was built) before the optimizer, which must hold the shards.
    distributed.shard(model.module, device, getattr(model, "distribution", None), policy)
    distributed.check_compile(model.module, optimizer, graphs)
    params = list(model.parameters())
    # Keras compiles a model without weights (fit then warns and trains nothing); torch refuses an
    # optimizer over no parameters, so none is built.
    torch_optimizer = optimizers_module.build(optimizer, params) if params else None
    accumulation_steps = _accumulation_steps(torch_optimizer, gradient_accumulation_steps)
    jit = jit_compile is True and not run_eagerly  # "auto" is eager on the torch backend, as in Keras
    config = {
        "optimizer": torch_optimizer,
        "loss": loss,
        "loss_weights": loss_weights,
        "metrics": metrics,
        "weighted_metrics": weighted_metrics,
        "run_eagerly": bool(run_eagerly),
        "steps_per_execution": steps_per_execution,
        "jit_compile": jit,
        "auto_scale_loss": bool(auto_scale_loss),
        "cuda_graph": graphs,
        "dtype_policy": policy,
        "gradient_accumulation_steps": gradient_accumulation_steps,
    }
    compiled = Compiled(
        optimizer=torch_optimizer,
        loss=CompiledLoss(loss, loss_weights) if loss is not None else None,
        metrics=CompiledMetrics(metrics, weighted_metrics),
        loss_tracker=metrics_module.Mean(name="loss").to(device),
        precision=mixed_precision.Precision(policy, device, torch_optimizer, scale_loss=bool(auto_scale_loss)),
        ddp=distributed.wrap(model.module, device, getattr(model, "distribution", None)),
        jit_compile=jit,
        steps_per_execution=steps_per_execution,
        cuda_graph=graphs,
        needs_closure=_step_needs_closure(torch_optimizer),
        trainable=any(p.requires_grad for p in params),
        config=config,
    )
    compiled.accumulation = accumulation_module.attach(
        torch_optimizer, accumulation_steps, compiled.precision, compiled.ddp
    )
    return compiled


def _accumulation_steps(optimizer: torch.optim.Optimizer | None, steps: Any) -> int | None:
    """N from compile's argument (our addition, for any optimizer) or the spec's (Keras'), not both."""
    check_gradient_accumulation_steps(steps)
    hooks = hooks_of(optimizer) if optimizer is not None else None
    own = hooks.gradient_accumulation_steps if hooks is not None else None
    if steps and own:
        raise ValueError(
            "Gradient accumulation is set twice: on the optimizer and in compile(). Set it in one place: "
            "`gradient_accumulation_steps` on a tc.optimizers object, or compile(..., gradient_accumulation_steps=N) "
            f"for any optimizer. Received: optimizer gradient_accumulation_steps={own}, "
            f"compile gradient_accumulation_steps={steps}"
        )
    steps = steps or own or None
    if steps and _step_needs_closure(optimizer):
        raise ValueError(
            f"{type(optimizer).__name__} evaluates the loss itself (its step takes a closure), so it cannot "
            "accumulate gradients over several batches; use a first-order optimizer, or no "
            f"gradient_accumulation_steps. Received: gradient_accumulation_steps={steps}"
        )
    return steps


def _refuse_unreduced_losses(loss: Any) -> None:
    for leaf in flatten(loss) if isinstance(loss, (list, tuple, dict)) else [loss]:
        reduction = getattr(leaf, "reduction", "mean")
        if isinstance(leaf, nn.Module) and reduction in ("none", None):
            raise ValueError(
                f"{type(leaf).__name__}(reduction={reduction!r}) returns one loss per sample, but training needs "
                "one number to minimise. Compile the loss with its default reduction (call it with "
                f"reduction='none' yourself where you need per-sample values). Received: loss={leaf!r}"
            )


def _step_needs_closure(optimizer: torch.optim.Optimizer | None) -> bool:
    if optimizer is None:
        return False
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def _identity(value: Any) -> Any:
    return value
