# SPDX-License-Identifier: Apache-2.0
"""A torch optimizer as plain data, and back: what ``model.save`` writes and ``tc.load_model`` rebuilds.

Owns: ``optimizer_config`` (the torch class by qualified name, its ``defaults``, the Keras step
hooks' arguments and a serializable learning-rate schedule), ``build_optimizer`` (the inverse,
over new parameters), the allow-list of modules whose optimizer classes may be imported by name
(anything else comes from ``custom_objects``), ``class_name`` (how files name an optimizer class),
whether a saved optimizer state fits an optimizer (``check_optimizer_state``: same class, same groups),
and the plain-data rules a weights-only file obeys (``is_plain``, the ``{"custom": name}`` marker
for Python objects stored by name). Not: what the optimizer's state holds (its own ``state_dict``),
reading or writing files (saving.py).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import torch

from torchcompile.optimizers import schedules
from torchcompile.optimizers.step_hooks import KerasStepHooks, hooks_of

__all__ = [
    "OPTIMIZER_MODULES",
    "optimizer_config",
    "build_optimizer",
    "optimizer_class",
    "class_name",
    "optimizer_class_name",
    "check_optimizer_state",
    "load_optimizer_state",
    "is_plain",
    "is_custom",
    "custom_names",
]

# Modules whose optimizer classes a file may name; any other class must come in custom_objects.
OPTIMIZER_MODULES = ("torch.optim", "torchcompile.optimizers")
_HOOK_ARGS = (
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "momentum_key",
    "ema_momentum",
    "ema_overwrite_frequency",
    "gradient_accumulation_steps",
)


def class_name(cls: type) -> str:
    """``module.QualName``: how a file names a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def optimizer_config(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The torch class, its defaults and the Keras step hooks' arguments (the state goes in ``state_dict``)."""
    cls = type(optimizer)
    name: Any = class_name(cls)
    if not cls.__module__.startswith(OPTIMIZER_MODULES):
        name = {"custom": cls.__name__}
    defaults = {k: v for k, v in optimizer.defaults.items() if is_plain(v)}
    config: dict[str, Any] = {"class_name": name, "defaults": defaults, "hooks": None}
    hooks = hooks_of(optimizer)
    if hooks is not None:
        config["hooks"] = {key: getattr(hooks, key) for key in _HOOK_ARGS}
        schedule = hooks.schedule
        if schedule is not None:
            config["hooks"]["schedule"] = (
                schedules.serialize(schedule) if _serializable_schedule(schedule) else {"custom": "learning_rate"}
            )
        if hooks.lr_scheduler is not None:
            config["hooks"]["lr_scheduler"] = {"custom": "lr_scheduler"}
    return config


def optimizer_class(config: dict[str, Any], custom_objects: dict) -> type:
    """The class ``config`` names: imported from the allow-list, or taken from ``custom_objects``."""
    name = config["class_name"]
    if is_custom(name):
        return custom_objects[name["custom"]]
    module_name, _, qualname = name.rpartition(".")
    if not module_name.startswith(OPTIMIZER_MODULES):
        raise ValueError(
            f"The optimizer class {name!r} is not one torchcompile imports by name (only classes from "
            f"{', '.join(OPTIMIZER_MODULES)}); pass it in custom_objects={{{qualname!r}: cls}}. Received: {name!r}"
        )
    try:
        return getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"The optimizer class {name!r} does not exist in this version of torch or torchcompile; "
            f"pass the class in custom_objects={{{qualname!r}: cls}}. Received: {name!r}"
        ) from e


def build_optimizer(config: dict[str, Any], params: list, custom_objects: dict) -> torch.optim.Optimizer:
    """The torch optimizer ``optimizer_config`` described, over ``params``, with its hooks attached."""
    cls = optimizer_class(config, custom_objects)
    defaults = _constructor_arguments(cls, config["defaults"])
    try:
        optimizer = cls(params, **defaults)
    except RuntimeError:
        if not defaults.get("fused"):
            raise
        defaults["fused"] = None  # saved on a device with fused kernels, loaded on one without
        optimizer = cls(params, **defaults)
    hooks = config.get("hooks")
    if hooks is not None:
        hooks = dict(hooks)
        schedule = hooks.pop("schedule", None)
        factory = hooks.pop("lr_scheduler", None)
        KerasStepHooks(
            optimizer,
            **hooks,
            schedule=_resolve_schedule(schedule, custom_objects),
            lr_scheduler=custom_objects["lr_scheduler"] if factory is not None else None,
        )
    return optimizer


def _constructor_arguments(cls: type, defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``defaults`` that ``cls`` takes: a subclass may keep a default its constructor sets
    itself (torch's AdamW has Adam's ``decoupled_weight_decay`` but does not take it)."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(defaults)
    return {k: v for k, v in defaults.items() if k in parameters}


def _resolve_schedule(schedule: Any, custom_objects: dict) -> Any:
    if schedule is None:
        return None
    return custom_objects[schedule["custom"]] if is_custom(schedule) else schedules.deserialize(schedule)


def _serializable_schedule(schedule: Any) -> bool:
    if not isinstance(schedule, schedules.LearningRateSchedule):
        return False
    try:
        return is_plain(schedules.serialize(schedule))
    except (TypeError, ValueError, NotImplementedError):
        return False


# ---------------------------------------------------------------- optimizer state
def optimizer_class_name(optimizer: torch.optim.Optimizer) -> str:
    """What a file records as the optimizer's class (``module.QualName``)."""
    return class_name(type(optimizer))


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, saved_class: str | None, source: str) -> None:
    """Raise a ValueError if ``state`` (saved from a ``saved_class``) cannot load into ``optimizer``; change nothing.

    Classes are compared by name (torch moves its classes between modules); with no recorded
    class (older files), hyperparameter names that differ both ways reveal another class.
    """
    own_class = optimizer_class_name(optimizer)
    if saved_class is not None and _base_name(saved_class) != _base_name(type(optimizer).__qualname__):
        raise ValueError(
            f"The optimizer state in {source} was saved from a {saved_class}, but the model's optimizer is a "
            f"{own_class}; one cannot resume the other's state. Compile with the optimizer it was saved with, "
            f"or start from the weights alone (load_weights). Received: saved={saved_class}, model={own_class}"
        )
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError(
            f"{source} does not hold an optimizer state_dict (with 'state' and 'param_groups'); save it "
            f"with optimizer.state_dict(). Received: {type(state).__name__}"
        )
    sizes, own_sizes = [len(g.get("params", ())) for g in groups], [len(g["params"]) for g in optimizer.param_groups]
    if sizes != own_sizes:
        raise ValueError(
            f"The optimizer state in {source} has parameter groups of sizes {sizes}, but the model's {own_class} "
            f"has {own_sizes}: it was saved for other parameters. Received: saved={sizes}, model={own_sizes}"
        )
    saved_keys = set().union(*groups) - {"params"} if groups else set()
    own_keys = set().union(*optimizer.param_groups) - {"params"}
    if saved_class is None and saved_keys - own_keys and own_keys - saved_keys:
        raise ValueError(
            f"The optimizer state in {source} was saved from another optimizer class than the model's {own_class}: "
            f"it has hyperparameters {sorted(saved_keys - own_keys)} and lacks {sorted(own_keys - saved_keys)}. "
            f"Compile with the optimizer it was saved with. Received: saved keys {sorted(saved_keys)}"
        )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, saved_class: str | None, source: str) -> None:
    """``optimizer.load_state_dict(state)`` after ``check_optimizer_state``."""
    check_optimizer_state(optimizer, state, saved_class, source)
    optimizer.load_state_dict(state)


# ---------------------------------------------------------------- plain data
def is_plain(value: Any) -> bool:
    """Data a weights-only file holds: None, bool, int, float, str and lists/tuples/dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def is_custom(value: Any) -> bool:
    """``{"custom": name}``: a Python object stored by name, to come back through ``custom_objects``."""
    return isinstance(value, dict) and set(value) == {"custom"}


def custom_names(config: Any) -> set[str]:
    """Every name stored as ``{"custom": name}`` anywhere in ``config``."""
    if is_custom(config):
        return {config["custom"]}
    values = config.values() if isinstance(config, dict) else config if isinstance(config, (list, tuple)) else ()
    return set().union(*(custom_names(v) for v in values))


def _base_name(class_name: str) -> str:
    """``torch.optim.adam.Adam`` and ``torchcompile.optimizers.torch_classes.TorchAdam`` are one optimizer:
    the second only adds Keras' ``learning_rate`` attribute (files saved before it existed still resume)."""
    return class_name.rpartition(".")[2].removeprefix("Torch")
