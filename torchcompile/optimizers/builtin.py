# SPDX-License-Identifier: Apache-2.0
"""The optimizers torch ships, under Keras' names, arguments and defaults.

Owns: one table per optimizer turning Keras' arguments into the torch class' keywords, and
the subclasses of torch's RMSprop, Adagrad and Adamax whose ``step`` applies Keras' rule.
Each spec says where torch's rule differs from Keras' and what we do about it. Also takes
the arguments of ``Optimizer`` (``weight_decay``, clipping, EMA, ``lr_scheduler``).
Not: the shared arguments and hooks (``optimizer.py``, ``step_hooks.py``).

Keras' epsilon placement is kept everywhere (api.md). Adam and AdamW keep torch's classes
and fused kernels: the step hook sets their ``eps`` during each step (``step_hooks.set_adam_epsilon``).
RMSprop, Adagrad and Adamax place epsilon where no per-step ``eps`` can move it, so they build
``TorchRMSprop``, ``TorchAdagrad`` and ``TorchAdamax``: subclasses of torch's classes (so
``isinstance`` checks and ``state_dict`` layouts hold) whose ``step`` runs Keras' rule with
``torch._foreach_*`` ops (over all parameters at once on CUDA, one at a time on the CPU, as
torch chooses) and no host sync. Nadam and Adadelta already match Keras.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from torchcompile.optimizers.optimizer import Optimizer
from torchcompile.optimizers.torch_classes import (
    KerasLearningRate,
    TorchAdadelta,
    TorchAdam,
    TorchAdamW,
    TorchNAdam,
    TorchSGD,
)

__all__ = [
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "TorchRMSprop",
    "TorchAdagrad",
    "TorchAdamax",
]


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


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum; ``torch.optim.SGD`` inside.

    Keras folds the rate into the momentum buffer, torch multiplies by it afterwards; the
    step hook rescales torch's buffer whenever the rate changes, so Keras' rule holds under
    schedules and ``set_learning_rate`` too. torch's ``dampening`` stays 0 (Keras has none).

    Example:
        >>> opt = SGD(learning_rate=0.1, momentum=0.9).build([torch.nn.Parameter(torch.ones(2))])
        >>> type(opt).__name__, opt.param_groups[0]["momentum"]
        ('SGD', 0.9)
    """

    torch_class = TorchSGD
    _keras_args = ("momentum", "nesterov")
    _momentum_key = "momentum_buffer"

    def __init__(self, learning_rate: Any = 0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum!r}")
        self.momentum, self.nesterov = float(momentum), nesterov

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov and self.momentum > 0}


class RMSprop(Optimizer):
    """RMSprop; ``TorchRMSprop`` inside, a ``torch.optim.RMSprop`` (Keras' ``rho`` is torch's ``alpha``).

    Keras divides by ``sqrt(v + epsilon)``, torch by ``sqrt(v) + epsilon``: ``TorchRMSprop`` keeps
    Keras' rule. As for SGD, momentum keeps Keras' rate-folded rule under a changing rate.
    """

    torch_class = TorchRMSprop
    _keras_args = ("rho", "momentum", "epsilon", "centered")
    _momentum_key = "momentum_buffer"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"alpha": self.rho, "eps": self.epsilon, "momentum": self.momentum, "centered": self.centered}


class AdamFamily(Optimizer):
    """Shared by the optimizers with Keras' ``beta_1``, ``beta_2`` and ``epsilon`` (torch's ``betas``, ``eps``)."""

    _keras_args = ("beta_1", "beta_2", "epsilon")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"betas": (self.beta_1, self.beta_2), "eps": self.epsilon}


class Adam(AdamFamily):
    """Adam; ``torch.optim.Adam`` inside.

    Keras scales epsilon with the bias correction (``lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    * m / (sqrt(v) + epsilon)``); torch adds it after correcting ``v``. For the duration of each
    step the step hook sets torch's ``eps`` to ``epsilon / sqrt(1 - beta_2**t)``, which is Keras' rule
    on torch's (fused) kernels; each param group keeps Keras' value as ``keras_epsilon``, and ``eps``
    shows it between steps.
    """

    torch_class = TorchAdam
    _keras_args = ("beta_1", "beta_2", "epsilon", "amsgrad")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.amsgrad = amsgrad

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "amsgrad": self.amsgrad}

    def _group_entries(self) -> dict[str, Any]:
        return {"keras_epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004); ``torch.optim.AdamW`` inside.

    torch's AdamW decays as Keras does (``w *= 1 - lr * weight_decay`` before the update),
    so it applies ``weight_decay`` itself rather than the step hook.
    """

    torch_class = TorchAdamW
    _native_weight_decay = True

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float | None = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay=weight_decay, **kwargs)

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "weight_decay": self.weight_decay or 0.0}


class Adagrad(Optimizer):
    """Adagrad; ``TorchAdagrad`` inside, a ``torch.optim.Adagrad``, with Keras' ``initial_accumulator_value`` 0.1.

    Keras divides by ``sqrt(acc + epsilon)``, torch by ``sqrt(acc) + epsilon``: ``TorchAdagrad`` keeps Keras'.
    """

    torch_class = TorchAdagrad
    _keras_args = ("initial_accumulator_value", "epsilon")

    def __init__(
        self, learning_rate: Any = 0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7, **kwargs: Any
    ):
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"initial_accumulator_value": self.initial_accumulator_value, "eps": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta with Keras' learning rate 0.001 (torch's default is 1.0); same rule as Keras'."""

    torch_class = TorchAdadelta
    _keras_args = ("rho", "epsilon")

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"rho": self.rho, "eps": self.epsilon}


class Adamax(AdamFamily):
    """Adamax; ``TorchAdamax`` inside, a ``torch.optim.Adamax``.

    Keras divides by ``max(beta_2 * u, |g|) + epsilon``, torch by ``max(beta_2 * u, |g| + epsilon)``:
    ``TorchAdamax`` keeps Keras' rule.
    """

    torch_class = TorchAdamax


class Nadam(AdamFamily):
    """Nadam; ``torch.optim.NAdam`` inside, with ``momentum_decay=1.0``.

    Keras' momentum schedule is ``beta_1 * (1 - 0.5 * 0.96**t)``; torch's is
    ``beta_1 * (1 - 0.5 * 0.96**(t * momentum_decay))`` (default 0.004), so 1.0 gives Keras'
    rule exactly, epsilon included.
    """

    torch_class = TorchNAdam

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "momentum_decay": 1.0}
