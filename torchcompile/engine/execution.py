# SPDX-License-Identifier: Apache-2.0
"""How a model's steps execute: eagerly, through ``torch.compile`` (``jit_compile=True``), or,
for groups of ``steps_per_execution`` training steps on CUDA, as one captured CUDA graph
(``cuda_graph=True``).

Owns: compiling a step once, the fallback to eager (with a warning) where compiling or
capturing fails, what makes a model eligible for capture, and keeping Python-side state
(Keras' ``iterations`` counter) right when a graph replays. Not: what a step computes
(``Model.train_step``) or the loop around it (``engine/loop.py``).

CUDA graph limits (each makes fit warn once and run eagerly): a custom ``train_step``;
``jit_compile``; a float16 loss scaler; an optimizer that is neither ``torch.optim.SGD`` nor
capturable (``capturable`` in its defaults: Adam, AdamW, RMSprop, ...); a learning-rate
schedule, ``lr_scheduler`` or EMA on the optimizer; a metric that is not a ``tc`` metric;
several processes (DDP); ``gradient_accumulation_steps`` (whether a step updates is decided
in Python; without ``cuda_graph``, ``steps_per_execution`` groups accumulating steps as any
others). A changed learning rate (ReduceLROnPlateau) re-captures. Groups whose batches differ
in shape from the captured ones (the last, smaller batch) run eagerly. Sync points: none per group.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

from torchcompile.core.tree import flatten, map_structure
from torchcompile.engine.compiled import leaf_metrics
from torchcompile.metrics.metric import ForeignMetric, Metric
from torchcompile.optimizers.step_hooks import hooks_of

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as torch's CUDA graph docs advise


def step_function(
    model: Any, compiled: Any, step: Callable[[tuple], Any], graphs: bool, custom_train_step: bool
) -> Callable[[tuple], Any]:
    """``step`` through torch.compile when ``compiled.jit_compile``; with ``graphs``, carrying a
    ``run_group`` that runs a group of training steps as one CUDA graph (engine/loop.py).

    Args:
        model: the model (its ``metrics``, ``device`` and ``module``).
        compiled: its compile state (engine/compiled.py).
    """
    run = compiled_step(model, compiled, step) if compiled.jit_compile else _EagerStep(step)
    if graphs:
        run.run_group = CudaGraphGroups(model, compiled, step, custom_train_step)
    return run


class _EagerStep:
    """An eager step that can carry a ``run_group``."""

    def __init__(self, step: Callable[[tuple], Any]):
        self.step = step

    def __call__(self, data: tuple) -> Any:
        return self.step(data)


def compiled_step(model: Any, compiled: Any, step: Callable[[tuple], Any]) -> Callable[[tuple], Any]:
    """``step`` through ``torch.compile``, falling back to eager (with a warning) if compiling fails.

    The first batch of every run stays eager (it builds the losses and metrics and runs the
    one-off input checks). Metric states are restored when the first compiled call fails, so
    that batch is not counted twice when it runs again eagerly.
    """
    state: dict[str, Any] = {"fn": None, "verified": False, "failed": False}

    def run(data: tuple) -> Any:
        if compiled.first_batch_pending or state["failed"]:
            return step(data)
        snapshot = None if state["verified"] else [t.clone() for m in leaf_metrics(model.metrics) for t in _states(m)]
        try:
            if state["fn"] is None:
                state["fn"] = torch.compile(step)
            result = state["fn"](data)
        except Exception as error:  # noqa: BLE001 - any compiler failure means: run eagerly
            if state["verified"] and not _is_compiler_error(error):
                raise
            _fall_back(model, compiled.optimizer, snapshot, error, state)
            return step(data)
        state["verified"] = True
        return result

    return run


def _is_compiler_error(error: Exception) -> bool:
    return type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))


def _fall_back(model: Any, optimizer: Any, snapshot: list | None, error: Exception, state: dict) -> None:
    state["failed"] = True
    if snapshot is not None:
        for target, saved in zip((t for m in leaf_metrics(model.metrics) for t in _states(m)), snapshot):
            target.copy_(saved)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
    warnings.warn(
        f"jit_compile=True: torch.compile could not compile {type(model.module).__name__}'s step, so "
        "it runs eagerly (same results, without the speed-up). Pass jit_compile=False to silence this. "
        f"Received: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
        RuntimeWarning,
        stacklevel=4,
    )


def _states(metric: Any) -> list[torch.Tensor]:
    return [t for t in getattr(metric, "variables", []) if isinstance(t, torch.Tensor)]


def capture_blocker(model: Any, compiled: Any, custom_train_step: bool) -> str | None:
    """Why ``model``'s train steps cannot be captured as a CUDA graph, or None when they can."""
    optimizer = compiled.optimizer
    hooks = hooks_of(optimizer)
    precision = compiled.precision
    reasons = [
        (model.device.type != "cuda", f"the model is on {model.device}, and CUDA graphs need a CUDA device"),
        (custom_train_step, "train_step is overridden, and its Python-side effects would not replay"),
        (compiled.jit_compile, "jit_compile=True already compiles the step (use one or the other)"),
        (precision is not None and precision.scaler is not None, "float16 loss scaling decides on the host"),
        (
            not (isinstance(optimizer, torch.optim.SGD) or "capturable" in optimizer.defaults),
            f"{type(optimizer).__name__} has no capturable mode",
        ),
        (
            hooks is not None and (hooks.scheduled or hooks.ema_momentum is not None),
            "the optimizer's learning-rate schedule or EMA is Python-side state",
        ),
        (
            any(isinstance(m, ForeignMetric) or not isinstance(m, Metric) for m in leaf_metrics(model.metrics)),
            "a metric is not a tc metric",
        ),
        (compiled.ddp is not None, "several processes: DDP all-reduces gradients from Python hooks"),
        (
            getattr(compiled, "accumulation", None) is not None,
            "gradient_accumulation_steps decides on the host, step by step, whether the optimizer updates",
        ),
    ]
    return next((why for blocked, why in reasons if blocked), None)


class CudaGraphGroups:
    """Runs a group of ``size`` training steps as one replay of a captured CUDA graph.

    Args:
        model: the ``tc.Model`` (CUDA, eligible: see ``capture_blocker``).
        compiled: its compile state (the optimizer; ``steps_per_execution`` is the group size).
        step: the eager train step, on one prepared batch.
    """

    def __init__(self, model: Any, compiled: Any, step: Callable[[tuple], Any], custom_train_step: bool = False):
        self.model, self.compiled, self.step, self.size = model, compiled, step, compiled.steps_per_execution
        self.optimizer = compiled.optimizer
        self.custom_train_step = custom_train_step
        self.checked = False
        self.graph: Any = None
        self.static: list = []
        self.lrs: list = []
        self.warm_steps = 0
        self.failed = False

    def __call__(self, batches: list) -> list:
        if self.failed or len(batches) != self.size or self.compiled.first_batch_pending:
            return [self.step(b) for b in batches]
        if not self.checked:  # after the first batch, when the losses and metrics are built
            self.checked = True
            why = capture_blocker(self.model, self.compiled, self.custom_train_step)
            if why is not None:
                self.failed = True
                warnings.warn(
                    f"cuda_graph=True: the train steps run eagerly, because {why}. "
                    f"Received: cuda_graph=True, steps_per_execution={self.size}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return [self.step(b) for b in batches]
        if self.graph is not None:
            if not self._fits(batches):  # e.g. a smaller last batch: eager, keep the graph
                return [self.step(b) for b in batches]
            if self.lrs == self._current_lrs():
                for slot, batch in zip(self.static, batches):
                    for static, new in zip(flatten(slot), flatten(batch)):
                        if isinstance(static, torch.Tensor):
                            static.copy_(new, non_blocking=True)
                return self._replay()
            # The rate changed (ReduceLROnPlateau, set_learning_rate): it is baked in, so capture again.
        elif self.warm_steps < WARMUP_STEPS:
            return self._warm_up(batches)
        try:
            self._capture(batches)
        except Exception as error:  # noqa: BLE001 - any capture failure means: run eagerly
            self.failed, self.graph = True, None
            warnings.warn(
                "cuda_graph=True: capturing the train step as a CUDA graph failed, so steps run eagerly. "
                f"Received: {type(error).__name__}: {error}",
                RuntimeWarning,
                stacklevel=3,
            )
            self.optimizer.zero_grad(set_to_none=True)
            return [self.step(b) for b in batches]
        return self._replay()  # capture records without running: this runs the group

    def _replay(self) -> list:
        self.graph.replay()
        _count_iterations(self.optimizer, self.size)
        return [None] * self.size

    def _warm_up(self, batches: list) -> list:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            results = [self.step(b) for b in batches]
        torch.cuda.current_stream().wait_stream(side)
        self.warm_steps += len(batches)
        return results

    def _capture(self, batches: list) -> None:
        optimizer = self.optimizer
        _make_capturable(optimizer)
        iterations = [g.get("iterations") for g in optimizer.param_groups]
        self.static = [map_structure(_clone, b) for b in batches]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                for slot in self.static:
                    self.step(slot)
        finally:
            for group, count in zip(optimizer.param_groups, iterations):  # the hooks ran during capture
                if count is not None:
                    group["iterations"] = count
        self.graph, self.lrs = graph, self._current_lrs()

    def _fits(self, batches: list) -> bool:
        for slot, batch in zip(self.static, batches):
            static, new = flatten(slot), flatten(batch)
            if len(static) != len(new):
                return False
            for s, b in zip(static, new):
                if isinstance(s, torch.Tensor) != isinstance(b, torch.Tensor) or (
                    isinstance(s, torch.Tensor) and (s.shape != b.shape or s.dtype != b.dtype)
                ):
                    return False
        return True

    def _current_lrs(self) -> list:
        return [g["lr"] if not isinstance(g["lr"], torch.Tensor) else id(g["lr"]) for g in self.optimizer.param_groups]


def _make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Turn on ``capturable`` (step counters on the device) where the optimizer has it."""
    if "capturable" not in optimizer.defaults:
        return
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            if isinstance(step, torch.Tensor) and step.device != p.device:
                optimizer.state[p]["step"] = step.to(p.device)


def _count_iterations(optimizer: torch.optim.Optimizer, steps: int) -> None:
    for group in optimizer.param_groups:
        if "iterations" in group:
            group["iterations"] += steps


def _clone(x: Any) -> Any:
    return x.clone() if isinstance(x, torch.Tensor) else x
