# SPDX-License-Identifier: Apache-2.0
"""Keras optimizer identifiers → real ``torch.optim.Optimizer`` objects.

Owns: the id table, ``get`` (as ``keras.optimizers.get``), ``build`` (what ``Model.compile``
calls); re-exports learning-rate access (``step_hooks.py``). ``tc.optimizers.Adam(...)`` and friends are
specs holding Keras arguments; ``spec.build(params)`` returns the torch optimizer.

Learning rate: ``param_groups[i]["lr"]`` is the truth, on any torch optimizer, and holds the
rate the next step uses. ``get_learning_rate(opt)`` reads it; ``set_learning_rate(opt, value)``
writes every group, and raises ``TypeError`` (as Keras does) when a schedule or a torch
``lr_scheduler`` given to the spec drives the rate. With ``use_ema=True``, call
``finalize_variable_values(opt)`` when training ends to load the averaged weights (Keras' fit does).
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from torchcompile.core.registry import Registry
from torchcompile.optimizers import schedules
from torchcompile.optimizers.builtin import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Nadam, RMSprop
from torchcompile.optimizers.extra import Adafactor, Ftrl, Lamb, Lion
from torchcompile.optimizers.optimizer import Optimizer
from torchcompile.optimizers.step_hooks import finalize_variable_values, get_learning_rate, set_learning_rate

__all__ = [
    "Optimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "Adafactor",
    "Lion",
    "Ftrl",
    "Lamb",
    "schedules",
    "get",
    "build",
    "get_learning_rate",
    "set_learning_rate",
    "finalize_variable_values",
]

ALL_OBJECTS = Registry(
    "optimizer",
    {
        "sgd": SGD,
        "rmsprop": RMSprop,
        "adam": Adam,
        "adamw": AdamW,
        "adagrad": Adagrad,
        "adadelta": Adadelta,
        "adamax": Adamax,
        "nadam": Nadam,
        "adafactor": Adafactor,
        "lion": Lion,
        "ftrl": Ftrl,
        "lamb": Lamb,
    },
    case_sensitive=False,
)


def get(identifier: Any) -> Any:
    """Resolve like ``keras.optimizers.get``: None, an id, a config dict, a spec or class, or a torch optimizer.

    Returns None for None, a spec for an id (Keras defaults), a ``{"class_name", "config"}`` dict, a spec
    class or a spec, and a torch optimizer instance or subclass unchanged.
    """
    if identifier is None or isinstance(identifier, (Optimizer, torch.optim.Optimizer)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, type) and issubclass(identifier, torch.optim.Optimizer):
        return identifier
    if isinstance(identifier, str):
        return ALL_OBJECTS.lookup(identifier)()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return ALL_OBJECTS.lookup(identifier["class_name"]).from_config(dict(identifier.get("config", {})))
    raise TypeError(
        "Could not interpret optimizer identifier: pass an id such as 'adam', a tc.optimizers "
        "object, a {'class_name', 'config'} dict, or a torch.optim.Optimizer (instance or class). "
        f"Received: optimizer={identifier!r} of type {type(identifier).__name__}"
    )


def build(identifier: Any, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer | None:
    """The torch optimizer ``Model.compile(optimizer=identifier)`` uses for the module's ``params``.

    A torch optimizer instance is returned as is once it is checked to hold every trainable
    parameter and nothing else; a torch optimizer class is built with its own defaults.
    """
    params, obj = list(params), get(identifier)
    if obj is None or isinstance(obj, torch.optim.Optimizer):
        return obj if obj is None else _checked(obj, params)
    return obj.build(params) if isinstance(obj, Optimizer) else obj(params)


def _checked(optimizer: torch.optim.Optimizer, params: list) -> torch.optim.Optimizer:
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    foreign = len(held - {id(p) for p in params})
    missing = sum(p.requires_grad and id(p) not in held for p in params)
    if foreign or missing:
        raise ValueError(
            f"The {type(optimizer).__name__} passed to compile must hold exactly the module's "
            "trainable parameters; build it over `model.module.parameters()` (freeze parameters "
            "to leave out with `requires_grad_(False)`). Received: optimizer with "
            f"{foreign} parameters not in the module, missing {missing} trainable ones"
        )
    return optimizer
