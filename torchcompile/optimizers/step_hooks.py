# SPDX-License-Identifier: Apache-2.0
"""Keras' extras around a torch optimizer's ``step()``, attached as hooks.

Owns, in Keras' order: gradient clipping (``clipnorm`` per variable, ``global_clipnorm``,
``clipvalue``), decoupled weight decay (``w -= w * weight_decay * lr``), the learning-rate
schedule (``param_groups[i]["lr"]`` always holds the rate of the *next* step), Keras' epsilon
on torch's Adam kernels (``set_adam_epsilon``, for the duration of each step), a torch
``lr_scheduler`` stepped after every optimizer step, the weights' moving average (EMA), and
learning-rate access for callbacks (``get_learning_rate``/``set_learning_rate``).
Not: the update rules (torch's classes, or ``extra.py``).

Everything here runs on the device through ``torch._foreach_*`` ops, with no host sync;
schedules are host arithmetic on a Python step counter. Values live in each param group so
that ``state_dict`` round-trips them: ``iterations`` (Keras' ``optimizer.iterations``: the
updates made), for momentum optimizers ``momentum_lr`` (see ``_rescale_momentum``) and, under
gradient accumulation, ``accumulated_steps`` (the micro-batches whose gradients ``.grad`` holds,
counted by engine/accumulation.py). Keras' raw counter (``optimizer._iterations``, which the
schedule reads) is ``iterations * N + accumulated_steps``; ``advance`` is Keras' iteration
without an update (the schedule and the EMA still move). A group holding
``keras_epsilon`` (Adam, AdamW) gets its torch ``eps`` from it during every step; between steps
``eps`` shows Keras' value again.
"""

from __future__ import annotations

import math
import warnings
import weakref
from typing import Any, Callable

import torch

__all__ = [
    "KerasStepHooks",
    "hooks_of",
    "raw_iterations",
    "set_adam_epsilon",
    "finalize_variable_values",
    "get_learning_rate",
    "set_learning_rate",
]

_ATTACHED: weakref.WeakKeyDictionary[torch.optim.Optimizer, KerasStepHooks] = weakref.WeakKeyDictionary()


def hooks_of(optimizer: torch.optim.Optimizer) -> KerasStepHooks | None:
    """The hooks ``KerasStepHooks`` attached to ``optimizer``, or None for a plain torch optimizer."""
    return _ATTACHED.get(optimizer)


class KerasStepHooks:
    """Step pre/post hooks and state_dict hooks carrying one spec's Keras arguments.

    Args:
        optimizer: the torch optimizer to attach to.
        schedule: ``step -> rate``, or None for a constant rate.
        weight_decay: Keras' decoupled weight decay, or None where the torch class applies it.
        clipnorm, global_clipnorm, clipvalue: Keras' clipping (at most one is set).
        momentum_key: the state key of a momentum buffer that Keras scales by the rate
            (SGD, RMSprop), or None.
        ema_momentum: the EMA momentum, or None for no EMA.
        ema_overwrite_frequency: copy the EMA into the weights every this many steps.
        lr_scheduler: ``optimizer -> torch.optim.lr_scheduler.LRScheduler``, or None.
        gradient_accumulation_steps: the spec's Keras argument (kept for ``get_config`` and files).
            The steps in effect are ``accumulation_steps``, which compile's train step sets
            (1 until then: a built optimizer updates on every ``step()``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        schedule: Callable[[int], float] | None = None,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        global_clipnorm: float | None = None,
        clipvalue: float | None = None,
        momentum_key: str | None = None,
        ema_momentum: float | None = None,
        ema_overwrite_frequency: int | None = None,
        lr_scheduler: Callable | None = None,
        gradient_accumulation_steps: int | None = None,
    ):
        self.schedule, self.weight_decay, self.momentum_key = schedule, weight_decay, momentum_key
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.accumulation_steps = 1
        self.clipnorm, self.global_clipnorm, self.clipvalue = clipnorm, global_clipnorm, clipvalue
        self.ema_momentum, self.ema_overwrite_frequency = ema_momentum, ema_overwrite_frequency
        for group in optimizer.param_groups:
            group.setdefault("iterations", 0)
            if schedule is not None:
                group["lr"] = float(schedule(group["iterations"]))
            if momentum_key is not None:
                group.setdefault("momentum_lr", group["lr"])
        # Built after the rate is in place: a torch scheduler reads it as its base rate.
        self.lr_scheduler = lr_scheduler(optimizer) if lr_scheduler is not None else None
        optimizer.register_step_pre_hook(self.pre_step)
        optimizer.register_step_post_hook(self.post_step)
        optimizer.register_state_dict_post_hook(self.save_extra_state)
        optimizer.register_load_state_dict_pre_hook(self.load_extra_state)
        _ATTACHED[optimizer] = self

    @property
    def scheduled(self) -> bool:
        """Whether something other than the user sets the rate each step."""
        return self.schedule is not None or self.lr_scheduler is not None

    def pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Before the update: Adam's epsilon, then clip gradients, decay weights, rescale momentum (Keras' order)."""
        for group in optimizer.param_groups:
            if "keras_epsilon" in group:  # host arithmetic on the Python step count: no sync
                set_adam_epsilon(group)
        if not (
            self.clipnorm
            or self.global_clipnorm
            or self.clipvalue
            or self.weight_decay
            or self.momentum_key is not None
        ):
            return  # nothing to do: no list building and no grad-mode switch on every step
        with torch.no_grad():
            self._pre_step(optimizer)

    def _pre_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if grads:
            self._clip(grads)
        found_inf = getattr(optimizer, "found_inf", None)  # the float16 scaler's flag, on the device
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if self.weight_decay and params:
                # Keras: variable -= variable * weight_decay * lr, before the update, for every optimizer.
                factor = 1 - self.weight_decay * group["lr"]
                if isinstance(found_inf, torch.Tensor):  # an overflowing step skips the decay too (no host read)
                    factor = 1 + (factor - 1) * (1 - found_inf.to(params[0].device, params[0].dtype))
                torch._foreach_mul_(params, factor)
            if self.momentum_key is not None and group.get("momentum", 0) != 0:
                self._rescale_momentum(optimizer, group, params)

    def post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """After the update: count the step, set the next step's rate, update the EMA."""
        before = optimizer.param_groups[0].get("iterations", 0)
        for group in optimizer.param_groups:
            group["iterations"] = group.get("iterations", 0) + 1
            if self.schedule is not None:
                group["lr"] = float(self.schedule(raw_iterations(group, self.accumulation_steps)))
            if "keras_epsilon" in group:
                group["eps"] = group["keras_epsilon"]  # between steps, eps shows Keras' value
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        if self.ema_momentum is not None:
            with torch.no_grad():
                self._update_ema(optimizer, before, getattr(optimizer, "found_inf", None))

    def advance(self, optimizer: torch.optim.Optimizer) -> None:
        """A Keras iteration that accumulated its gradient instead of updating (after the engine
        counted it in ``accumulated_steps``): the schedule (and a torch ``lr_scheduler``) see it,
        and Keras updates the EMA on it too (``_backend_apply_gradients``: every iteration)."""
        for group in optimizer.param_groups:
            if self.schedule is not None:
                group["lr"] = float(self.schedule(raw_iterations(group, self.accumulation_steps)))
        if self.lr_scheduler is not None:
            with warnings.catch_warnings():  # torch warns when its scheduler moves before any optimizer step
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
                self.lr_scheduler.step()
        iterations = optimizer.param_groups[0].get("iterations", 0)
        if self.ema_momentum is not None and iterations:  # before the first update Keras' average copies
            with torch.no_grad():  # the unchanged weights, as that update's own copy will
                self._update_ema(optimizer, iterations, tracked_only=True)

    def _clip(self, grads: list[torch.Tensor]) -> None:
        if self.clipnorm:
            # Keras clips each variable's gradient to norm <= clipnorm: g * c / max(||g||, c).
            norms = torch._foreach_norm(grads)
            torch._foreach_mul_(grads, [self.clipnorm / n.clamp_min(self.clipnorm) for n in norms])
        elif self.global_clipnorm:
            # Keras' clip_by_global_norm, kept on the device: a NaN/inf norm makes every gradient NaN.
            norms = [n.to(grads[0].device) for n in torch._foreach_norm(grads)]
            norm = torch.linalg.vector_norm(torch.stack(norms))
            c = self.global_clipnorm
            scale = c * torch.minimum(1.0 / norm, norm.new_tensor(1.0 / c)) + (norm - norm)
            torch._foreach_mul_(grads, [scale.to(g.device) for g in grads])
        elif self.clipvalue:
            torch._foreach_clamp_min_(grads, -self.clipvalue)
            torch._foreach_clamp_max_(grads, self.clipvalue)

    def _rescale_momentum(self, optimizer: torch.optim.Optimizer, group: dict, params: list) -> None:
        # Keras folds the rate into the buffer (m = momentum*m - lr*g; w += m); torch applies it after
        # (b = momentum*b + g; w -= lr*b), so m == -lr*b. Equal at a constant rate; when the rate
        # changes, rescaling b by lr_prev / lr keeps Keras' rule. At a rate of 0 torch's buffer
        # cannot carry Keras' momentum, so such steps leave the weights where they are.
        lr, previous = group["lr"], group.get("momentum_lr", group["lr"])
        if not isinstance(lr, float) or lr == 0 or lr == previous:
            return
        if previous:
            bufs = [optimizer.state[p].get(self.momentum_key) for p in params]
            bufs = [b for b in bufs if b is not None]
            if bufs:
                torch._foreach_mul_(bufs, previous / lr)
        group["momentum_lr"] = lr

    def _update_ema(
        self, optimizer: torch.optim.Optimizer, iterations: int, found_inf: Any = None, tracked_only: bool = False
    ) -> None:
        # Keras, with ``iterations`` its counter before this step (updates made): while it is 0 the
        # average is a copy of the weights; afterwards it moves by ema_momentum; when
        # (iterations + 1) % ema_overwrite_frequency == 0 the weights become the average. The
        # average sits in optimizer.state, so state_dict saves it; only weights that received a
        # gradient are tracked (torch's classes initialise a parameter's state on its first step).
        # ``tracked_only`` (a step without an update): no state is created, as torch's classes take a
        # parameter with state for one they already initialised.
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        if tracked_only:
            params = [p for p in params if "ema" in optimizer.state.get(p, {})]
        fresh = [p for p in params if iterations == 0 or "ema" not in optimizer.state[p]]
        for p in fresh:
            optimizer.state[p]["ema"] = p.detach().clone()
        fresh_ids = {id(p) for p in fresh}
        seen = [p for p in params if id(p) not in fresh_ids]
        if seen:
            averages = [optimizer.state[p]["ema"] for p in seen]
            if isinstance(found_inf, torch.Tensor):  # an overflowing float16 step leaves the average too
                weight = (1 - self.ema_momentum) * (1 - found_inf.to(seen[0].device, seen[0].dtype))
                torch._foreach_add_(averages, torch._foreach_mul(torch._foreach_sub(seen, averages), weight))
            else:
                torch._foreach_lerp_(averages, seen, 1 - self.ema_momentum)
        if self.ema_overwrite_frequency and (iterations + 1) % self.ema_overwrite_frequency == 0:
            finalize_variable_values(optimizer)

    def save_extra_state(self, optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
        if self.lr_scheduler is not None:
            state_dict["lr_scheduler"] = self.lr_scheduler.state_dict()
        return state_dict

    def load_extra_state(self, optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
        saved = state_dict.pop("lr_scheduler", None)
        if saved is not None and self.lr_scheduler is not None:
            self.lr_scheduler.load_state_dict(saved)
        return state_dict


def raw_iterations(group: dict, accumulation_steps: int = 1) -> int:
    """Keras' raw counter ``optimizer._iterations`` (the step a schedule is evaluated at): the updates
    made times the accumulation steps, plus the micro-batches accumulated since the last update."""
    return group.get("iterations", 0) * accumulation_steps + group.get("accumulated_steps", 0)


def set_adam_epsilon(group: dict) -> None:
    """Set torch's ``eps`` so that torch's Adam/AdamW kernels apply Keras' epsilon (the group's
    ``keras_epsilon``) on the group's next step. The post-step hook puts ``keras_epsilon`` back.

    Keras divides by ``sqrt(v) + epsilon`` before correcting the bias (``lr * sqrt(1 - beta_2**t) /
    (1 - beta_1**t) * m / (sqrt(v) + epsilon)``); torch corrects first (``lr / (1 - beta_1**t) * m /
    (sqrt(v) / sqrt(1 - beta_2**t) + eps)``). The two agree when ``eps = epsilon / sqrt(1 - beta_2**t)``,
    with ``t = iterations + 1``, Keras' step count, computed here on the host, so torch's fused kernels
    stay in use. While a CUDA graph is being captured, the graph would keep whatever ``eps`` it sees
    for every replay, so it gets Keras' ``epsilon`` itself, the value the rule tends to as ``t`` grows
    (torch's placement, within ``epsilon * (1 / sqrt(1 - beta_2**t) - 1)`` of Keras').
    """
    epsilon = group["keras_epsilon"]
    if group.get("capturable") and torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
        group["eps"] = epsilon
        return
    beta_2 = float(group["betas"][1])
    group["eps"] = epsilon / math.sqrt(1.0 - beta_2 ** (group.get("iterations", 0) + 1))


@torch.no_grad()
def finalize_variable_values(optimizer: torch.optim.Optimizer) -> None:
    """Copy the weights' moving average into the weights (Keras' ``finalize_variable_values``).

    A no-op for an optimizer without ``use_ema``. Keras' ``fit`` calls it when training ends.
    """
    pairs = [
        (p, optimizer.state[p]["ema"])
        for g in optimizer.param_groups
        for p in g["params"]
        if "ema" in optimizer.state.get(p, {})
    ]
    if pairs:
        torch._foreach_copy_([p for p, _ in pairs], [e for _, e in pairs])


def get_learning_rate(optimizer: torch.optim.Optimizer) -> float:
    """The rate the next step of ``optimizer`` uses (its first param group's ``lr``)."""
    return float(optimizer.param_groups[0]["lr"])


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every param group's rate; a TypeError when a schedule drives it (as Keras)."""
    hooks = _ATTACHED.get(optimizer)
    if hooks is not None and hooks.scheduled:
        raise TypeError(
            "This optimizer was built with a learning-rate schedule (or lr_scheduler), hence its "
            "learning rate is not settable. If you need the learning rate to be settable, build "
            f"the optimizer with a float `learning_rate`. Received: value={value!r}"
        )
    for group in optimizer.param_groups:
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(value)
        else:
            group["lr"] = float(value)
