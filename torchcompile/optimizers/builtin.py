# SPDX-License-Identifier: Apache-2.0
"""The optimizers torch ships, under Keras' names, arguments and defaults.

Owns: one table per optimizer turning Keras' arguments into the torch class' keywords.
Each class says where torch's rule differs from Keras' and what we do about it. Also
takes the arguments of ``Optimizer`` (``weight_decay``, clipping, EMA, ``lr_scheduler``).
Not: the shared arguments and hooks (``optimizer.py``, ``step_hooks.py``).

Where torch places epsilon differently from Keras (Adam, AdamW, Adamax, RMSprop, Adagrad),
torch's placement stands (api.md); tests/optimizers/test_builtin.py states the measured
difference for each.
"""

from __future__ import annotations

from typing import Any

import torch

from torchcompile.optimizers.optimizer import Optimizer

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "Nadam"]


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

    torch_class = torch.optim.SGD
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
    """RMSprop; ``torch.optim.RMSprop`` inside (Keras' ``rho`` is torch's ``alpha``).

    Keras divides by ``sqrt(v + epsilon)``, torch by ``sqrt(v) + epsilon``; torch's stands.
    As for SGD, momentum keeps Keras' rate-folded rule under a changing rate.
    """

    torch_class = torch.optim.RMSprop
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
    * m / (sqrt(v) + epsilon)``); torch adds it after correcting ``v``. torch's placement stands.
    """

    torch_class = torch.optim.Adam
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


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.004); ``torch.optim.AdamW`` inside.

    torch's AdamW decays as Keras does (``w *= 1 - lr * weight_decay`` before the update),
    so it applies ``weight_decay`` itself rather than the step hook.
    """

    torch_class = torch.optim.AdamW
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
    """Adagrad; ``torch.optim.Adagrad`` inside, with Keras' ``initial_accumulator_value`` 0.1.

    Keras divides by ``sqrt(acc + epsilon)``, torch by ``sqrt(acc) + epsilon``; torch's stands.
    """

    torch_class = torch.optim.Adagrad
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

    torch_class = torch.optim.Adadelta
    _keras_args = ("rho", "epsilon")

    def __init__(self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"rho": self.rho, "eps": self.epsilon}


class Adamax(AdamFamily):
    """Adamax; ``torch.optim.Adamax`` inside.

    Keras divides by ``max(beta_2 * u, |g|) + epsilon``, torch by ``max(beta_2 * u, |g| + epsilon)``;
    torch's stands.
    """

    torch_class = torch.optim.Adamax


class Nadam(AdamFamily):
    """Nadam; ``torch.optim.NAdam`` inside, with ``momentum_decay=1.0``.

    Keras' momentum schedule is ``beta_1 * (1 - 0.5 * 0.96**t)``; torch's is
    ``beta_1 * (1 - 0.5 * 0.96**(t * momentum_decay))`` (default 0.004), so 1.0 gives Keras'
    rule exactly, epsilon included.
    """

    torch_class = torch.optim.NAdam

    def _torch_kwargs(self) -> dict[str, Any]:
        return {**super()._torch_kwargs(), "momentum_decay": 1.0}
