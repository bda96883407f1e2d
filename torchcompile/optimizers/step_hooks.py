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
schedules are host arithmetic on a Python step counter. Two values live in each param group
so that ``state_dict`` round-trips them: ``iterations`` (Keras' ``optimizer.iterations``) and,
for momentum optimizers, ``momentum_lr`` (see ``_rescale_momentum``). A group holding
``keras_epsilon`` (Adam, AdamW) gets its torch ``eps`` from it during every step; between steps
``eps`` shows Keras' value again.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable

import torch

__all__ = [
    "KerasStepHooks",
    "hooks_of",
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
    ):
        self.schedule, self.weight_decay, self.momentum_key = schedule, weight_decay, momentum_key
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
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if self.weight_decay and params:
                # Keras: variable -= variable * weight_decay * lr, before the update, for every optimizer.
                torch._foreach_mul_(params, 1 - self.weight_decay * group["lr"])
            if self.momentum_key is not None and group.get("momentum", 0) != 0:
                self._rescale_momentum(optimizer, group, params)

    def post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """After the update: count the step, set the next step's rate, update the EMA."""
        for group in optimizer.param_groups:
            group["iterations"] = group.get("iterations", 0) + 1
            if self.schedule is not None:
                group["lr"] = float(self.schedule(group["iterations"]))
            if "keras_epsilon" in group:
                group["eps"] = group["keras_epsilon"]  # between steps, eps shows Keras' value
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        if self.ema_momentum is not None:
            with torch.no_grad():
                self._update_ema(optimizer)

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

    def _update_ema(self, optimizer: torch.optim.Optimizer) -> None:
        # Keras: the first step copies the weights; later ones average with ema_momentum. The
        # average sits in optimizer.state, so state_dict saves it; only weights that received a
        # gradient are tracked (torch's classes initialise a parameter's state on its first step).
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        fresh = [p for p in params if "ema" not in optimizer.state[p]]
        for p in fresh:
            optimizer.state[p]["ema"] = p.detach().clone()
        fresh_ids = {id(p) for p in fresh}
        seen = [p for p in params if id(p) not in fresh_ids]
        if seen:
            torch._foreach_lerp_([optimizer.state[p]["ema"] for p in seen], seen, 1 - self.ema_momentum)
        step = optimizer.param_groups[0]["iterations"]
        if self.ema_overwrite_frequency and step % self.ema_overwrite_frequency == 0:
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
