# SPDX-License-Identifier: Apache-2.0
"""torch's RMSprop, Adagrad and Adamax with Keras' update rules.

Owns: ``TorchRMSprop``, ``TorchAdagrad`` and ``TorchAdamax``, subclasses of torch's classes (so
``isinstance`` checks and ``state_dict`` layouts hold) whose ``step`` places epsilon where Keras
does (inside the square root, or after Adamax's max), which no per-step ``eps`` can move. They
run ``torch._foreach_*`` ops (over all parameters at once on CUDA, one at a time on the CPU, as
torch chooses) and read nothing on the host. Not: Keras' arguments and defaults (builtin.py).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from torchcompile.optimizers.torch_classes import KerasLearningRate

__all__ = ["TorchRMSprop", "TorchAdagrad", "TorchAdamax"]


# ---------------------------------------------------------------- Keras' rules on torch's classes
def _closure(closure: Callable | None) -> Any:
    return None if closure is None else torch.enable_grad()(closure)()


def _prepare(optimizer: torch.optim.Optimizer, group: dict, init: dict[str, float]) -> tuple[list, list, list]:
    """The group's parameters with a gradient, their gradients and their states, steps counted.

    States are created as torch's class creates them (a float ``step`` tensor, on the CPU unless
    ``capturable``, and ``init``'s buffers filled with their values). Gradients are negated under
    ``maximize`` and get torch's L2 ``weight_decay`` (0 when built from a spec: Keras' decay is a hook).
    """
    params = [p for p in group["params"] if p.grad is not None]
    if group.get("differentiable"):
        raise RuntimeError(f"{type(optimizer).__name__} does not support differentiable=True.")
    if any(p.grad.is_sparse for p in params):
        raise RuntimeError(f"{type(optimizer).__name__} does not support sparse gradients.")
    states = [optimizer.state[p] for p in params]
    scalar_dtype = torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
    for p, state in zip(params, states):
        if not state:
            device = p.device if group.get("capturable") else "cpu"
            state["step"] = torch.zeros((), dtype=scalar_dtype, device=device)
            state.update({k: torch.full_like(p, v, memory_format=torch.preserve_format) for k, v in init.items()})
    if not params:
        return params, [], states
    torch._foreach_add_([s["step"] for s in states], 1)
    grads = [p.grad for p in params]
    if group.get("maximize"):
        grads = torch._foreach_neg(grads)
    if group.get("weight_decay"):
        grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
    return params, grads, states


def _descend(params: list, updates: list, lr: Any, denominators: list | None = None) -> None:
    """``params -= lr * updates`` (``/ denominators`` when given); ``lr`` may be a tensor (no host sync)."""
    if isinstance(lr, torch.Tensor):
        if denominators is not None:
            updates = torch._foreach_div(updates, denominators)
        torch._foreach_sub_(params, torch._foreach_mul(updates, lr))
    elif denominators is not None:
        torch._foreach_addcdiv_(params, updates, denominators, value=-lr)
    else:
        torch._foreach_add_(params, updates, alpha=-lr)


def _chunks(group: dict, params: list, grads: list, states: list) -> list[tuple[list, list, list]]:
    """The lists one update runs over: all at once with ``foreach`` (torch's default where every
    parameter is on CUDA), else one parameter at a time (torch's default elsewhere: on the CPU a
    per-tensor update keeps each tensor in cache and beats a foreach pass by up to 2x)."""
    if not params:
        return []
    foreach = group.get("foreach")
    if foreach is None:
        foreach = all(p.is_cuda for p in params)
    if foreach:
        return [(params, grads, states)]
    return [([p], [g], [s]) for p, g, s in zip(params, grads, states)]


class TorchRMSprop(torch.optim.RMSprop, KerasLearningRate):
    """``torch.optim.RMSprop`` with Keras' rule: epsilon inside the square root.

    ``v = rho * v + (1 - rho) * g**2``; centered: ``a = rho * a + (1 - rho) * g`` and
    ``d = sqrt(v - a**2 + eps)``, else ``d = sqrt(v + eps)``; then ``w -= lr * g / d``, or with
    momentum ``b = momentum * b + g / d; w -= lr * b`` (torch's buffer, which the spec's step hook
    rescales when the rate changes, so Keras' ``m = momentum * m + lr * g / d`` holds). State keys
    and constructor are torch's (``alpha`` is Keras' ``rho``), ``foreach`` included.
    """

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        loss = _closure(closure)
        for group in self.param_groups:
            momentum, centered = group["momentum"], group["centered"]
            init = {"square_avg": 0.0, **({"momentum_buffer": 0.0} if momentum > 0 else {})}
            prepared = _prepare(self, group, {**init, **({"grad_avg": 0.0} if centered else {})})
            for params, grads, states in _chunks(group, *prepared):
                self._update(group, params, grads, states)
        return loss

    @staticmethod
    def _update(group: dict, params: list, grads: list, states: list) -> None:
        momentum, rho, eps = group["momentum"], group["alpha"], group["eps"]
        square_avgs = [s["square_avg"] for s in states]
        torch._foreach_mul_(square_avgs, rho)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - rho)
        if group["centered"]:
            grad_avgs = [s["grad_avg"] for s in states]
            torch._foreach_lerp_(grad_avgs, grads, 1 - rho)
            denominators = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)
            torch._foreach_add_(denominators, eps)
        else:
            denominators = torch._foreach_add(square_avgs, eps)
        torch._foreach_sqrt_(denominators)
        if momentum > 0:
            buffers = [s["momentum_buffer"] for s in states]
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_addcdiv_(buffers, grads, denominators)
            _descend(params, buffers, group["lr"])
        else:
            _descend(params, grads, group["lr"], denominators)


class TorchAdagrad(torch.optim.Adagrad, KerasLearningRate):
    """``torch.optim.Adagrad`` with Keras' rule: ``acc += g**2; w -= lr * g / sqrt(acc + eps)``.

    Keras' epsilon sits inside the square root (torch's: ``sqrt(acc) + eps``). torch's ``lr_decay``
    is kept (``lr / (1 + (t - 1) * lr_decay)``; Keras has none); ``fused`` is ignored.
    """

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        loss = _closure(closure)
        for group in self.param_groups:
            prepared = _prepare(self, group, {"sum": group["initial_accumulator_value"]})
            for params, grads, states in _chunks(group, *prepared):
                self._update(group, params, grads, states)
        return loss

    @staticmethod
    def _update(group: dict, params: list, grads: list, states: list) -> None:
        sums = [s["sum"] for s in states]
        torch._foreach_addcmul_(sums, grads, grads)
        denominators = torch._foreach_add(sums, group["eps"])
        torch._foreach_sqrt_(denominators)
        if group["lr_decay"]:  # the step counts live on the CPU: reading them is no device sync
            torch._foreach_mul_(denominators, [1 + (float(s["step"]) - 1) * group["lr_decay"] for s in states])
        _descend(params, grads, group["lr"], denominators)


class TorchAdamax(torch.optim.Adamax, KerasLearningRate):
    """``torch.optim.Adamax`` with Keras' rule: epsilon added after the infinity norm's maximum.

    ``m = beta_1 * m + (1 - beta_1) * g; u = max(beta_2 * u, |g|); w -= lr * m / ((1 - beta_1**t) *
    (u + eps))`` (torch keeps ``max(beta_2 * u, |g| + eps)`` as its state). State keys and constructor
    are torch's; with ``capturable`` the bias correction is computed on the device.
    """

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        loss = _closure(closure)
        for group in self.param_groups:
            prepared = _prepare(self, group, {"exp_avg": 0.0, "exp_inf": 0.0})
            for params, grads, states in _chunks(group, *prepared):
                self._update(group, params, grads, states)
        return loss

    @staticmethod
    def _update(group: dict, params: list, grads: list, states: list) -> None:
        (beta_1, beta_2), lr = group["betas"], group["lr"]
        exp_avgs, exp_infs = [s["exp_avg"] for s in states], [s["exp_inf"] for s in states]
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta_1)
        torch._foreach_mul_(exp_infs, beta_2)
        torch._foreach_maximum_(exp_infs, torch._foreach_abs(grads))
        denominators = torch._foreach_add(exp_infs, group["eps"])
        if group.get("capturable"):  # (beta_1**t - 1) / lr on the device, then w += m / (d * that)
            corrections = torch._foreach_pow(beta_1, [s["step"] for s in states])
            torch._foreach_sub_(corrections, 1)
            torch._foreach_div_(corrections, lr)
            torch._foreach_mul_(denominators, corrections)
            torch._foreach_addcdiv_(params, exp_avgs, denominators)
        else:  # the step counts live on the CPU: reading them is no device sync
            lr = float(lr)
            scales = [-lr / (1 - beta_1 ** float(s["step"])) for s in states]
            torch._foreach_addcdiv_(params, exp_avgs, denominators, scales)


# ---------------------------------------------------------------- the specs
