# SPDX-License-Identifier: Apache-2.0
"""The optimizers torch ships, under Keras' names, arguments and defaults.

Owns: one table per optimizer turning Keras' arguments into the torch class' keywords (the
subclasses of torch's RMSprop, Adagrad and Adamax whose ``step`` applies Keras' rule live in
``keras_rules.py``).
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

from typing import Any

from torchcompile.optimizers.keras_rules import TorchAdagrad, TorchAdamax, TorchRMSprop
from torchcompile.optimizers.optimizer import Optimizer
from torchcompile.optimizers.torch_classes import (
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
