# SPDX-License-Identifier: Apache-2.0
"""Keras 3 learning-rate schedules. Owns: the rate for each optimizer step.

A schedule is called with the number of optimizer steps already taken (0 for
the first step, as Keras' ``optimizer.iterations``) and returns a Python
float. The arithmetic runs on the host in float64, so reading a rate never
touches a device; Keras computes the same formulas in float32, so values agree
to float32 rounding. The optimizer's step hook (``step_hooks.py``) writes the
rate into ``param_groups[i]["lr"]``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize",
    "deserialize",
]


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float``; subclasses set ``_config_keys``."""

    _config_keys: tuple[str, ...] = ()

    def __call__(self, step: int) -> float:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as Keras' ``get_config``."""
        return {key: getattr(self, key) for key in self._config_keys}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _DecayOverSteps(LearningRateSchedule):
    """Shared by the schedules driven by ``step / decay_steps`` (floored when ``staircase``)."""

    _config_keys = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str | None = None,
    ):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name or type(self).__name__

    def _progress(self, step: int) -> float:
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


class ExponentialDecay(_DecayOverSteps):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; ``staircase`` floors the exponent.

    Example:
        >>> ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)(20)
        0.025
    """

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]`` (Keras' inclusive upper bound)."""

    _config_keys = ("boundaries", "values", "name")

    def __init__(self, boundaries: list[int], values: list[float], name: str = "PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}."
            )
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return float(value)
        return float(self.values[-1])


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps``.

    With ``cycle=True`` the horizon grows to the next multiple of ``decay_steps``, as in Keras.
    """

    _config_keys = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power, self.cycle, self.name = end_learning_rate, power, cycle, name

    def __call__(self, step: int) -> float:
        decay_steps = self.decay_steps
        if self.cycle:
            decay_steps *= 1.0 if step == 0 else math.ceil(step / self.decay_steps)
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return (self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power + self.end_learning_rate


class InverseTimeDecay(_DecayOverSteps):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``; ``staircase`` floors the ratio."""

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


def _cosine(fraction: float, alpha: float) -> float:
    return (1 - alpha) * 0.5 * (1.0 + math.cos(math.pi * fraction)) + alpha


class CosineDecay(LearningRateSchedule):
    """Cosine decay to ``alpha * start`` over ``decay_steps``, after an optional linear warmup.

    Without ``warmup_target`` the decay starts at ``initial_learning_rate``. With it, the rate
    rises linearly from ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``,
    then decays from ``warmup_target``.
    """

    _config_keys = ("initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target", "warmup_steps")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ):
        _positive("decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps, self.alpha = initial_learning_rate, decay_steps, alpha
        self.name, self.warmup_target, self.warmup_steps = name, warmup_target, warmup_steps

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            step = min(step, self.decay_steps)
            return self.initial_learning_rate * _cosine(step / self.decay_steps, self.alpha)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (step / self.warmup_steps) + self.initial_learning_rate
        return self.warmup_target * _cosine((step - self.warmup_steps) / self.decay_steps, self.alpha)


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods grow by ``t_mul``, peaks shrink by ``m_mul``."""

    _config_keys = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ):
        _positive("first_decay_steps", first_decay_steps)
        self.initial_learning_rate, self.first_decay_steps = initial_learning_rate, first_decay_steps
        self.t_mul, self.m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step: int) -> float:
        fraction = step / self.first_decay_steps
        if self.t_mul == 1.0:
            i_restart = math.floor(fraction)
            fraction -= i_restart
        else:
            i_restart = self._restarts_before(fraction)
            sum_r = (1.0 - self.t_mul**i_restart) / (1.0 - self.t_mul)
            fraction = (fraction - sum_r) / self.t_mul**i_restart
        peak = self.m_mul**i_restart
        return self.initial_learning_rate * (
            (1 - self.alpha) * peak * 0.5 * (1.0 + math.cos(math.pi * fraction)) + self.alpha
        )

    def _restarts_before(self, fraction: float) -> int:
        """How many periods (lengths 1, t_mul, t_mul**2, ... in units of first_decay_steps) end by ``fraction``.

        Keras' closed form ``floor(log(1 - fraction * (1 - t_mul)) / log(t_mul))``, corrected by one
        where rounding lands it on the wrong side of a restart (Keras' float32 does, e.g. at step
        150 for first_decay_steps=60, t_mul=1.5); a restart step starts the new period.
        """
        i = math.floor(math.log(1.0 - fraction * (1.0 - self.t_mul)) / math.log(self.t_mul))
        ends = lambda n: (1.0 - self.t_mul**n) / (1.0 - self.t_mul)  # noqa: E731
        if ends(i + 1) <= fraction:
            i += 1
        elif ends(i) > fraction:
            i -= 1
        return i


_SCHEDULES = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name", "config"}``, the form ``deserialize`` and Keras' configs use."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """The schedule a ``serialize`` dict (or a Keras-saved one) describes."""
    name = config.get("class_name")
    if name not in _SCHEDULES:
        raise ValueError(
            f"Unknown learning rate schedule {name!r}. Known schedules: "
            f"{', '.join(sorted(_SCHEDULES))}. Received: config={config!r}"
        )
    return _SCHEDULES[name].from_config(dict(config.get("config", {})))
