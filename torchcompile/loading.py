# SPDX-License-Identifier: Apache-2.0
"""``tc.load_model``: a file ``model.save`` wrote, back into a ``tc.Model`` ready to resume training.

Owns: ``load_model`` and turning a saved compile configuration back into ``compile()``'s arguments
(ids and ``{"class_name", "config"}`` dicts through the namespaces' ``get``, allow-listed torch loss
modules rebuilt from their constructor arguments, Python objects from ``custom_objects``). Loading
is all or nothing: the file, the weights, the custom objects, the optimizer class and state are all
checked before the module is touched. Not: reading and checking files, weights and optimizer state
(saving.py), the optimizer's configuration (optimizers/serialization.py).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch

from torchcompile import losses as losses_module
from torchcompile import metrics as metrics_module
from torchcompile import saving
from torchcompile.model import Model
from torchcompile.optimizers import serialization

__all__ = ["load_model"]


def load_model(
    path: str | os.PathLike,
    module: torch.nn.Module | None = None,
    custom_objects: dict | None = None,
    compile: bool = True,
    device: str | torch.device = "auto",
) -> Model:
    """A ``tc.Model`` around ``module`` with the saved weights, compiled and with its optimizer state.

    Args:
        path: a file written by ``model.save``.
        module: a freshly built instance of the saved architecture (architectures live in code).
        custom_objects: ``{name: object}`` for losses, metrics and optimizer pieces saved by name.
        compile: restore the compile configuration and optimizer state (False: weights only).
        device: as ``tc.Model``.

    Returns:
        the model; ``model.initial_epoch`` is the number of epochs it had trained, to pass
        as ``fit(initial_epoch=...)``.

    Example:
        >>> # model.save("model.pt"); later, in another process:
        >>> # model = tc.load_model("model.pt", module=Net()); model.fit(x, y, initial_epoch=model.initial_epoch)
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            "tc.load_model needs the architecture as a module: files hold weights only, never code. "
            "Build the module as when it was saved and pass it: tc.load_model(path, module=Net()). "
            f"Received: module={module!r}"
        )
    custom_objects = dict(custom_objects or {})
    source = repr(os.fspath(path))
    data = saving.read_model_file(path)
    _warn_on_another_module_class(data.get("module_class"), module, source)
    saving.check_state_dict(module, data["weights"], source=source)
    config = data["compile"] if compile else None
    arguments = compile_arguments(config, custom_objects) if config is not None else None
    optimizer_config = config.get("optimizer") if config is not None else None
    if optimizer_config is not None and data["optimizer"] is not None:
        # Checked on a throwaway optimizer over the same parameters: nothing is touched before it passes.
        probe = serialization.build_optimizer(optimizer_config, list(module.parameters()), custom_objects)
        saving.check_optimizer_state(probe, data["optimizer"], data.get("optimizer_class"), source)

    # Everything is checked: from here on, the module changes.
    model = Model(module, device=device)
    saving.load_state_dict(model.module, data["weights"], source=source)
    model.initial_epoch = int(data.get("epoch", 0))
    if arguments is not None:
        optimizer = None
        if optimizer_config is not None:
            optimizer = serialization.build_optimizer(optimizer_config, list(model.module.parameters()), custom_objects)
        model.compile(optimizer=optimizer, **arguments)
        if data["optimizer"] is not None and model.optimizer is not None:
            model.optimizer.load_state_dict(data["optimizer"])
    return model


def _warn_on_another_module_class(saved: Any, module: torch.nn.Module, source: str) -> None:
    own = type(module).__qualname__
    if isinstance(saved, str) and saved != own:
        warnings.warn(
            f"{source} was saved from a {saved} module, and is loaded into a {own}: the weights fit (keys "
            f"and shapes match), but check that this is the architecture you meant. Received: module={own}",
            stacklevel=3,
        )


def compile_arguments(config: dict[str, Any], custom_objects: dict) -> dict[str, Any]:
    """``compile()``'s arguments but the optimizer, from a saved configuration; every missing custom object
    is named at once, before anything is built."""
    missing = sorted(n for n in serialization.custom_names(config) if n not in custom_objects)
    if missing:
        raise ValueError(
            f"The saved model was compiled with {missing}, Python objects a weights-only file cannot "
            "hold. Pass them: tc.load_model(path, module=..., custom_objects={name: object}), or "
            f"load with compile=False and call compile() yourself. Received: "
            f"custom_objects={sorted(custom_objects)}"
        )
    metric = _resolver(metrics_module.get, custom_objects)
    return {
        "loss": saving.map_spec(_resolver(losses_module.get, custom_objects), config["loss"]),
        "metrics": saving.map_spec(metric, config["metrics"]),
        "loss_weights": config["loss_weights"],
        "weighted_metrics": saving.map_spec(metric, config["weighted_metrics"]),
        "jit_compile": config["jit_compile"],
        "steps_per_execution": config["steps_per_execution"],
        "cuda_graph": config.get("cuda_graph", False),
        "dtype_policy": config.get("dtype_policy"),
        "gradient_accumulation_steps": config.get("gradient_accumulation_steps"),
    }


def _resolver(get: Callable[[Any], Any], custom_objects: dict) -> Callable[[Any], Any]:
    def resolve(entry: Any) -> Any:
        if serialization.is_custom(entry):
            return custom_objects[entry["custom"]]
        if isinstance(entry, dict) and "torch_loss" in entry:
            return _torch_loss(entry)
        return get(entry) if isinstance(entry, dict) else entry  # ids stay strings: compile resolves them

    return resolve


def _torch_loss(entry: dict) -> torch.nn.Module:
    name = entry["torch_loss"]
    cls = saving.TORCH_LOSSES.get(name)
    if cls is None:
        raise ValueError(
            f"The saved model names the torch loss {name!r}, which is not one torchcompile rebuilds "
            f"({', '.join(sorted(saving.TORCH_LOSSES))}); pass it in custom_objects. Received: {name!r}"
        )
    return cls(**entry["config"])
