# SPDX-License-Identifier: Apache-2.0
"""The torch optimizers the Keras ids build, with Keras' ``learning_rate`` attribute.

Owns: ``KerasLearningRate`` (``optimizer.learning_rate`` read and written as a number, which callbacks
written for Keras use) and the subclasses of torch's own classes that carry it. Each is its torch
class in every other way: constructor, state keys, fused kernels, ``isinstance`` checks. Not: the
classes with Keras' own update rules (builtin.py, extra.py), the step hooks (step_hooks.py).
"""

from __future__ import annotations

import torch

from torchcompile.optimizers.step_hooks import get_learning_rate, set_learning_rate

__all__ = ["KerasLearningRate", "TorchSGD", "TorchAdam", "TorchAdamW", "TorchAdadelta", "TorchNAdam"]


class KerasLearningRate:
    """Keras' ``optimizer.learning_rate``: the rate of the next step (``param_groups[i]["lr"]``); setting it
    sets every group's, and is refused when a schedule drives the rate, as Keras refuses it."""

    @property
    def learning_rate(self) -> float:
        return get_learning_rate(self)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        set_learning_rate(self, float(value))


class TorchSGD(torch.optim.SGD, KerasLearningRate):
    """``torch.optim.SGD`` with Keras' ``learning_rate`` attribute."""


class TorchAdam(torch.optim.Adam, KerasLearningRate):
    """``torch.optim.Adam`` with Keras' ``learning_rate`` attribute."""


class TorchAdamW(torch.optim.AdamW, KerasLearningRate):
    """``torch.optim.AdamW`` with Keras' ``learning_rate`` attribute."""


class TorchAdadelta(torch.optim.Adadelta, KerasLearningRate):
    """``torch.optim.Adadelta`` with Keras' ``learning_rate`` attribute."""


class TorchNAdam(torch.optim.NAdam, KerasLearningRate):
    """``torch.optim.NAdam`` with Keras' ``learning_rate`` attribute."""
