# SPDX-License-Identifier: Apache-2.0
"""Keras optimizers torch does not ship: Lion, Ftrl, Lamb, Adafactor.

Owns: for each, a ``torch.optim.Optimizer`` subclass with Keras 3's update rule (state in
``self.state``, so ``state_dict``/``load_state_dict`` work as for any torch optimizer), and
a spec with Keras' arguments and defaults. Adafactor's is a subclass of
``torch.optim.Adafactor`` (its rule is Keras', its state layout torch's). Lion and Lamb update
with ``torch._foreach_*`` ops; Ftrl and Adafactor, whose state differs in shape per parameter, loop.
Not: weight decay and clipping, applied by the spec's step hooks as for every optimizer.

Bias corrections count steps per parameter (``state["step"]``, a Python int), as torch's
optimizers do; Keras counts optimizer steps, the same while every parameter gets a gradient.
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.optimizers.builtin import AdamFamily
from torchcompile.optimizers.optimizer import Optimizer
from torchcompile.optimizers.torch_classes import KerasLearningRate

__all__ = ["Lion", "Ftrl", "Lamb", "Adafactor", "TorchLion", "TorchFtrl", "TorchLamb", "TorchAdafactor"]


def _scalar_dtype() -> torch.dtype:
    """The dtype torch's optimizers give their step counters."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def _with_grads(group: dict) -> list[torch.Tensor]:
    return [p for p in group["params"] if p.grad is not None]


def _states(optimizer: torch.optim.Optimizer, params: list, **init: Any) -> list[dict]:
    """Each parameter's state, created with ``step=0`` and zero tensors named in ``init``."""
    states = [optimizer.state[p] for p in params]
    for p, state in zip(params, states):
        if "step" not in state:
            state["step"] = 0
            state.update({k: torch.full_like(p, v, memory_format=torch.preserve_format) for k, v in init.items()})
        state["step"] += 1
    return states


class TorchLion(torch.optim.Optimizer, KerasLearningRate):
    """Keras' Lion: ``w -= lr * sign(beta_1*m + (1-beta_1)*g)``, then ``m = beta_2*m + (1-beta_2)*g``."""

    def __init__(self, params: Any, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.99)):
        super().__init__(params, {"lr": lr, "betas": betas})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            (beta_1, beta_2), grads = group["betas"], [p.grad for p in params]
            ms = [s["m"] for s in _states(self, params, m=0.0)]
            update = torch._foreach_mul(ms, beta_1)
            torch._foreach_add_(update, grads, alpha=1 - beta_1)
            torch._foreach_sign_(update)
            torch._foreach_add_(params, update, alpha=-group["lr"])
            torch._foreach_mul_(ms, beta_2)
            torch._foreach_add_(ms, grads, alpha=1 - beta_2)
        return loss


class TorchFtrl(torch.optim.Optimizer, KerasLearningRate):
    """Keras' FTRL-Proximal, with its L1, L2 and L2-shrinkage terms and ``beta``."""

    def __init__(
        self,
        params: Any,
        lr: float = 0.001,
        lr_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1: float = 0.0,
        l2: float = 0.0,
        l2_shrinkage: float = 0.0,
        beta: float = 0.0,
    ):
        super().__init__(
            params,
            {
                "lr": lr,
                "lr_power": lr_power,
                "l1": l1,
                "l2": l2,
                "beta": beta,
                "initial_accumulator_value": initial_accumulator_value,
                "l2_shrinkage": l2_shrinkage,
            },
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            params = _with_grads(group)
            states = _states(self, params, accumulator=group["initial_accumulator_value"], linear=0.0)
            for p, state in zip(params, states):
                self._update(p, p.grad, state, group)
        return loss

    @staticmethod
    def _update(w: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        lr, power, l1 = group["lr"], -group["lr_power"], group["l1"]
        l2 = group["l2"] + group["beta"] / (2.0 * lr)
        accum, linear = state["accumulator"], state["linear"]
        new_accum = accum + g * g
        sigma = (new_accum.pow(power) - accum.pow(power)) / lr
        linear.add_(g + 2 * group["l2_shrinkage"] * w - sigma * w)
        quadratic = new_accum.pow(power) / lr + 2 * l2
        w.copy_((linear.clamp(-l1, l1) - linear) / quadratic)
        accum.copy_(new_accum)


class TorchLamb(torch.optim.Optimizer, KerasLearningRate):
    """Keras' Lamb: Adam's bias-corrected step scaled per tensor by ``||w|| / ||step||``."""

    def __init__(self, params: Any, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            params = _with_grads(group)
            if not params:
                continue
            (beta_1, beta_2), grads = group["betas"], [p.grad for p in params]
            states = _states(self, params, m=0.0, v=0.0)
            ms, vs, steps = [s["m"] for s in states], [s["v"] for s in states], [s["step"] for s in states]
            torch._foreach_lerp_(ms, grads, 1 - beta_1)
            torch._foreach_lerp_(vs, torch._foreach_mul(grads, grads), 1 - beta_2)
            denom = torch._foreach_div(vs, [1 - beta_2**t for t in steps])
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            update = torch._foreach_div(torch._foreach_div(ms, [1 - beta_1**t for t in steps]), denom)
            # Keras: ratio = ||w|| / ||update|| when both are positive, else 1; kept on the device.
            ratios = [
                torch.where((wn > 0) & (un > 0), wn / un, torch.ones_like(wn))
                for wn, un in zip(torch._foreach_norm(params), torch._foreach_norm(update))
            ]
            torch._foreach_mul_(update, ratios)
            torch._foreach_add_(params, update, alpha=-group["lr"])
        return loss


class TorchAdafactor(torch.optim.Adafactor, KerasLearningRate):
    """``torch.optim.Adafactor`` with Keras' rule, and Keras' defaults (lr 0.001, ``eps=(1e-30, 1e-3)``).

    Second moments are factored over the last two axes of tensors with ndim >= 2, as torch's;
    where torch clamps the variance estimate by ``eps[0]**2``, Keras adds ``eps[0]`` to ``g**2``
    before averaging, and that is the rule here. ``d`` is Keras' ``clip_threshold``; torch's
    decoupled ``weight_decay`` is applied before the update (0 when built from a spec: Keras'
    decay is a step hook). State keys are torch's (``step``, ``row_var``, ``col_var``,
    ``variance``), so a torch Adafactor's ``state_dict`` loads. Unlike torch's class, no step
    reads a device tensor on the host; ``foreach`` is ignored (a loop, as torch's default).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.001,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (1e-30, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ):
        if not d > 0:
            raise ValueError(f"Clipping threshold d (Keras' clip_threshold) must be positive. Received: d={d}")
        # Keras accepts any positive clip_threshold; torch's constructor refuses d < 1.
        super().__init__(params, lr, beta2_decay, eps, max(d, 1.0), weight_decay, foreach=foreach, maximize=maximize)
        if d < 1:
            self.defaults["d"] = d
            for group in self.param_groups:
                group["d"] = d

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for p in _with_grads(group):
                if p.grad.is_sparse:
                    raise RuntimeError("TorchAdafactor does not support sparse gradients.")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())  # on the CPU, as torch's
                    if p.dim() > 1:
                        state["row_var"] = p.new_zeros(p.shape[:-1] + (1,))
                        state["col_var"] = p.new_zeros(p.shape[:-2] + (1,) + p.shape[-1:])
                    else:
                        state["variance"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                grad = -p.grad if group["maximize"] else p.grad
                self._update(p, grad, state, group)
        return loss

    @staticmethod
    def _update(w: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        t = float(state["step"])  # a CPU tensor, as torch keeps it: no device sync
        lr, decay = float(group["lr"]), group["beta2_decay"]
        eps_1, eps_2 = group["eps"]
        eps_1 = torch.finfo(w.dtype).eps if eps_1 is None else eps_1  # torch's default
        if group["weight_decay"]:
            w.mul_(1 - lr * group["weight_decay"])
        # Keras caps the rate at 1/sqrt(t) (with or without relative_step, whose cap is the same).
        alpha = torch.clamp_min(_rms(w), eps_2) * min(lr, t**-0.5)
        weight = t**decay  # Keras' 1 - beta_2_t
        if w.dim() > 1:  # means of g**2 + eps_1 over rows and columns, without materialising g**2
            row, col = state["row_var"], state["col_var"]
            row.lerp_(_mean_square(g, -1).add_(eps_1), weight)
            col.lerp_(_mean_square(g, -2).add_(eps_1), weight)
            u = torch.mul(row / row.mean(dim=-2, keepdim=True), col).sqrt_()
        else:
            u = state["variance"].lerp_(g.square().add_(eps_1), weight).sqrt()
        u = torch.div(g, u, out=u)  # Keras' u = g / sqrt(v), in the buffer sqrt(v) used
        w.addcmul_(u, alpha / torch.clamp_min(_rms(u) / group["d"], 1.0), value=-1)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square, as a 0-d tensor (no host sync)."""
    return torch.linalg.vector_norm(x) / x.numel() ** 0.5


def _mean_square(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(x**2).mean(dim, keepdim=True)`` through a norm, without an ``x**2`` buffer."""
    return torch.linalg.vector_norm(x, dim=dim, keepdim=True).square_().div_(x.shape[dim])


class Lion(Optimizer):
    """Lion (Keras defaults: lr 0.001, beta_1 0.9, beta_2 0.99); ``TorchLion`` inside."""

    torch_class = TorchLion
    _keras_args = ("beta_1", "beta_2")

    def __init__(self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                f"to SignSGD. Received: beta_1={beta_1}."
            )
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"betas": (self.beta_1, self.beta_2)}


class Ftrl(Optimizer):
    """FTRL-Proximal with Keras' arguments and defaults; ``TorchFtrl`` inside."""

    torch_class = TorchFtrl
    _keras_args = (
        "learning_rate_power",
        "initial_accumulator_value",
        "l1_regularization_strength",
        "l2_regularization_strength",
        "l2_shrinkage_regularization_strength",
        "beta",
    )

    def __init__(
        self,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        if learning_rate_power > 0:
            raise ValueError(
                "`learning_rate_power` needs to be negative or zero. "
                f"Received: learning_rate_power={learning_rate_power}."
            )
        for key, value in {
            "initial_accumulator_value": initial_accumulator_value,
            "l1_regularization_strength": l1_regularization_strength,
            "l2_regularization_strength": l2_regularization_strength,
            "l2_shrinkage_regularization_strength": l2_shrinkage_regularization_strength,
        }.items():
            if value < 0:
                raise ValueError(f"`{key}` needs to be positive or zero. Received: {key}={value}.")
        self.learning_rate_power, self.initial_accumulator_value = learning_rate_power, initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _torch_kwargs(self) -> dict[str, Any]:
        return {
            "lr_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1": self.l1_regularization_strength,
            "l2": self.l2_regularization_strength,
            "l2_shrinkage": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }


class Lamb(AdamFamily):
    """Lamb with Keras' defaults (lr 0.001, betas 0.9/0.999, epsilon 1e-7); ``TorchLamb`` inside."""

    torch_class = TorchLamb


class Adafactor(Optimizer):
    """Adafactor with Keras' arguments and defaults; ``TorchAdafactor`` inside, a ``torch.optim.Adafactor``.

    ``relative_step`` is kept for Keras configs: Keras' rule caps the rate at ``1/sqrt(t)``
    whether or not it is set, and so does ``TorchAdafactor``.
    """

    torch_class = TorchAdafactor
    _keras_args = ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold", "relative_step")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **kwargs: Any,
    ):
        super().__init__(learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"beta2_decay": self.beta_2_decay, "eps": (self.epsilon_1, self.epsilon_2), "d": self.clip_threshold}
