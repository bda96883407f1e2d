# SPDX-License-Identifier: Apache-2.0
"""The optimizer spec: Keras arguments in, a real ``torch.optim.Optimizer`` out.

Owns: the arguments every Keras optimizer shares (``learning_rate``, ``weight_decay``,
clipping, EMA, ``gradient_accumulation_steps``), their validation, ``get_config``/``from_config``,
and ``build(params)``, which creates the torch optimizer and attaches ``step_hooks.KerasStepHooks``.
Not: the per-optimizer argument tables (``builtin.py``, ``extra.py``) or the update rules.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from torchcompile.optimizers import schedules
from torchcompile.optimizers.step_hooks import KerasStepHooks

__all__ = ["Optimizer", "check_gradient_accumulation_steps"]

# torch classes with a fused CUDA kernel; torch already defaults to foreach on CUDA otherwise.
_FUSED_CUDA = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
# On the CPU torch defaults to a per-tensor loop; its fused Adam/AdamW kernels are about 2.5x
# faster (SGD is left alone: its fused kernel refuses the sparse gradients plain SGD accepts).
_FUSED_CPU = (torch.optim.Adam, torch.optim.AdamW)


class Optimizer:
    """Keras' arguments for one optimizer; ``build(params)`` returns the torch optimizer.

    Subclasses set ``torch_class``, list their own arguments in ``_keras_args`` and turn them
    into the torch class' keywords in ``_torch_kwargs``; ``_group_entries`` adds values to each
    param group that the step hooks read (they round-trip through ``state_dict``).

    Args:
        learning_rate: a float, or a schedule from ``tc.optimizers.schedules`` (any callable
            ``step -> rate`` works), evaluated before every optimizer step as Keras does.
        weight_decay: decoupled weight decay, as Keras applies it on every optimizer:
            ``w -= w * weight_decay * lr`` before the update (torch's own ``weight_decay`` on
            SGD/Adam/RMSprop/Adagrad is L2, which Keras' argument does not mean).
        clipnorm: clip each parameter's gradient to this norm.
        clipvalue: clip every gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: clip all gradients together to this global norm.
        use_ema: keep a moving average of the weights in the optimizer's state.
        ema_momentum: the moving average's momentum.
        ema_overwrite_frequency: every this many steps, copy the average into the weights.
        gradient_accumulation_steps: an integer >= 2, or None: ``fit`` and ``train_on_batch``
            then change the weights only on every N-th optimizer iteration, with the mean of the
            N gradients (Keras 3's rule: clipping and weight decay apply to that mean at the
            update; learning-rate schedules see every iteration; ``iterations`` counts updates).
            The accumulation runs in ``Model.compile``'s train step (engine/accumulation.py);
            the torch optimizer ``build`` returns still updates on every ``step()`` call.
        lr_scheduler: a torch alternative to a schedule: a callable taking the built torch
            optimizer and returning a ``torch.optim.lr_scheduler.LRScheduler``, e.g.
            ``functools.partial(torch.optim.lr_scheduler.StepLR, step_size=100)``. It is
            stepped after every optimizer step (Keras' granularity) and saved in the
            optimizer's ``state_dict`` under ``"lr_scheduler"``.
        name: a name for ``get_config``.
    """

    torch_class: type[torch.optim.Optimizer]
    _keras_args: tuple[str, ...] = ()
    _momentum_key: str | None = None  # a buffer Keras scales by the rate (SGD, RMSprop)
    _native_weight_decay = False  # the torch class applies Keras' decay itself (AdamW)

    def __init__(
        self,
        learning_rate: float | Callable[[int], float] = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        lr_scheduler: Callable | None = None,
        name: str | None = None,
        gradient_accumulation_steps: int | None = None,
    ):
        _check_learning_rate(learning_rate, lr_scheduler)
        check_gradient_accumulation_steps(gradient_accumulation_steps)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                + ", ".join(f"{k}={v}" for k, v in clips.items())
            )
        if use_ema and not 0 <= ema_momentum <= 1:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum, self.ema_overwrite_frequency = use_ema, ema_momentum, ema_overwrite_frequency
        self.lr_scheduler = lr_scheduler
        self.gradient_accumulation_steps = gradient_accumulation_steps or None
        self.name = name or type(self).__name__.lower()

    def _torch_kwargs(self) -> dict[str, Any]:
        """The torch class' keyword arguments for this spec's own Keras arguments."""
        raise NotImplementedError(f"{type(self).__name__} must define `_torch_kwargs()`.")

    def _group_entries(self) -> dict[str, Any]:
        """Extra entries for every param group of the built optimizer (none by default)."""
        return {}

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The torch optimizer over ``params``, with Keras' clipping, decay and schedule attached.

        Args:
            params: the parameters (or param-group dicts) to optimise, e.g. ``module.parameters()``.

        Returns:
            an instance of ``self.torch_class``.
        """
        params = [dict(g, params=_tensors([g])) if isinstance(g, dict) else g for g in params]
        if not params:
            raise ValueError(
                f"{type(self).__name__}.build() received no parameters; pass the module's "
                "parameters, e.g. `spec.build(module.parameters())`. Received: params=[]"
            )
        schedule = None if _is_constant(self.learning_rate) else self.learning_rate
        lr = float(schedule(0)) if schedule is not None else float(self.learning_rate)
        optimizer = self.torch_class(params, lr=lr, **self._torch_kwargs(), **_implementation(self, params))
        for group in optimizer.param_groups:
            group.update(self._group_entries())
        KerasStepHooks(
            optimizer,
            schedule=schedule,
            weight_decay=None if self._native_weight_decay else self.weight_decay,
            clipnorm=self.clipnorm,
            global_clipnorm=self.global_clipnorm,
            clipvalue=self.clipvalue,
            momentum_key=self._momentum_key,
            ema_momentum=self.ema_momentum if self.use_ema else None,
            ema_overwrite_frequency=self.ema_overwrite_frequency,
            lr_scheduler=self.lr_scheduler,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
        )
        return optimizer

    def get_config(self) -> dict[str, Any]:
        """Keras' config: every constructor argument; a schedule is serialized as a dict.

        ``lr_scheduler`` is a torch callable and is left out of the config.
        """
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        config = {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        config.update({key: getattr(self, key) for key in self._keras_args})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """The spec ``get_config`` described (a Keras-saved optimizer config works too)."""
        config = {k: v for k, v in config.items() if k not in _KERAS_ONLY}
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(learning_rate={self.learning_rate!r}, "
            + ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keras_args)
            + ")"
        )


# Keras config keys with no meaning here: defaults are accepted and dropped, others refused by __init__.
_KERAS_ONLY = {"loss_scale_factor"}


def check_gradient_accumulation_steps(steps: Any, argument: str = "gradient_accumulation_steps") -> None:
    """Keras' check: falsy (None, 0) turns accumulation off; anything else must be an integer >= 2."""
    if not steps:
        return
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"`{argument}` must be an integer >= 2. Received: {argument}={steps!r}")


def _is_constant(learning_rate: Any) -> bool:
    return isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool)


def _check_learning_rate(learning_rate: Any, lr_scheduler: Any) -> None:
    if not (_is_constant(learning_rate) or callable(learning_rate)):
        raise ValueError(
            "Argument `learning_rate` should be a float, or a schedule from "
            "`tc.optimizers.schedules` (any callable `step -> rate`). "
            f"Received: learning_rate={learning_rate!r}"
        )
    if lr_scheduler is not None and not _is_constant(learning_rate):
        raise ValueError(
            "Pass either a schedule as `learning_rate` or a torch `lr_scheduler`, not both; the "
            f"torch scheduler starts from a float `learning_rate`. Received: "
            f"learning_rate={learning_rate!r}, lr_scheduler={lr_scheduler!r}"
        )
    if lr_scheduler is not None and not callable(lr_scheduler):
        raise TypeError(
            "`lr_scheduler` must be a callable taking the torch optimizer and returning an "
            "LRScheduler, e.g. functools.partial(torch.optim.lr_scheduler.StepLR, step_size=10). "
            f"Received: lr_scheduler={lr_scheduler!r}"
        )


def _implementation(spec: Optimizer, params: list) -> dict[str, Any]:
    """``fused=True`` where torch has a fused kernel for the device of every (float) parameter."""
    tensors = _tensors(params)
    if not tensors or not all(p.is_floating_point() for p in tensors):
        return {}
    if issubclass(spec.torch_class, _FUSED_CUDA) and all(p.is_cuda for p in tensors):
        return {"fused": True}
    if issubclass(spec.torch_class, _FUSED_CPU) and all(p.device.type == "cpu" for p in tensors):
        return {"fused": True}
    return {}


def _tensors(params: list) -> list[torch.Tensor]:
    """The tensors in a list of tensors and param-group dicts."""
    out = []
    for item in params:
        group = item["params"] if isinstance(item, dict) else item
        out.extend([group] if isinstance(group, torch.Tensor) else group)
    return out
