# SPDX-License-Identifier: Apache-2.0
"""compile()'s arguments as plain data, for the files ``model.save`` writes (saving.py).

Owns: ``compile_config`` (ids, ``{"class_name", "config"}`` dicts, allow-listed torch loss modules
as ``{"torch_loss", "config"}``, anything else ``{"custom": name}``), ``TORCH_LOSSES`` (the torch loss
modules a file may name) and ``map_spec`` (a function over every loss or metric of a compile spec).
Not: writing the file (saving.py), rebuilding compile's arguments from it (loading.py), the
optimizer's configuration (optimizers/serialization.py).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from torchcompile import losses as losses_module
from torchcompile import metrics as metrics_module
from torchcompile.optimizers import serialization
from torchcompile.optimizers.serialization import is_custom, is_plain

__all__ = ["compile_config", "map_spec", "TORCH_LOSSES"]

# torch.nn loss modules a file may name; rebuilt from their constructor arguments, never unpickled.
TORCH_LOSSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        nn.L1Loss,
        nn.MSELoss,
        nn.CrossEntropyLoss,
        nn.NLLLoss,
        nn.BCELoss,
        nn.BCEWithLogitsLoss,
        nn.KLDivLoss,
        nn.PoissonNLLLoss,
        nn.GaussianNLLLoss,
        nn.SmoothL1Loss,
        nn.HuberLoss,
        nn.HingeEmbeddingLoss,
        nn.SoftMarginLoss,
        nn.MultiLabelMarginLoss,
        nn.MultiLabelSoftMarginLoss,
        nn.MultiMarginLoss,
        nn.CosineEmbeddingLoss,
        nn.MarginRankingLoss,
        nn.TripletMarginLoss,
        nn.CTCLoss,
    )
}
_DEPRECATED_LOSS_ARGS = ("size_average", "reduce")  # torch folds them into `reduction`


def compile_config(model: Any) -> dict[str, Any]:
    """compile()'s arguments as plain data: ids, ``{"class_name", "config"}`` dicts, torch loss modules as
    ``{"torch_loss", "config"}``, or ``{"custom": name}``."""
    config = model.get_compile_config()
    optimizer, policy = config["optimizer"], config.get("dtype_policy")
    loss = lambda v: _serialize(v, losses_module.get)  # noqa: E731
    metric = lambda v: _serialize(v, metrics_module.get)  # noqa: E731
    return {
        "optimizer": serialization.optimizer_config(optimizer) if optimizer is not None else None,
        "loss": map_spec(loss, config["loss"]),
        "loss_weights": config["loss_weights"],
        "metrics": map_spec(metric, config["metrics"]),
        "weighted_metrics": map_spec(metric, config["weighted_metrics"]),
        "jit_compile": config["jit_compile"],
        "steps_per_execution": config["steps_per_execution"],
        "cuda_graph": config["cuda_graph"],
        "dtype_policy": getattr(policy, "name", policy),
        "gradient_accumulation_steps": config.get("gradient_accumulation_steps"),
    }


def _serialize(value: Any, get: Callable[[Any], Any]) -> Any:
    """An id or plain config when ``get`` can rebuild it from one; a torch loss spec; else ``{"custom": name}``."""
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "get_config") and not isinstance(value, type):
        try:
            entry = {"class_name": type(value).__name__, "config": value.get_config()}
            if is_plain(entry):
                get(entry)
                return entry
        except (TypeError, ValueError, KeyError, AttributeError):
            pass
    entry = _torch_loss_entry(value)
    if entry is not None:
        return entry
    name = getattr(value, "__name__", None) or getattr(value, "name", None) or type(value).__name__
    return {"custom": str(name)}


def _torch_loss_entry(value: Any) -> dict | None:
    """``{"torch_loss": name, "config": constructor arguments}`` for an allow-listed torch loss, else None."""
    cls = type(value)
    if TORCH_LOSSES.get(cls.__name__) is not cls:
        return None  # subclasses and other classes may hold state their constructor does not describe
    config = {}
    for name in list(inspect.signature(cls.__init__).parameters)[1:]:
        if name in _DEPRECATED_LOSS_ARGS:
            continue
        if not hasattr(value, name):
            return None
        arg = getattr(value, name)
        if isinstance(arg, torch.Tensor):
            arg = arg.detach().cpu().clone()  # a class weight: a tensor, which weights-only files hold
        elif not is_plain(arg):
            return None
        config[name] = arg
    return {"torch_loss": cls.__name__, "config": config}


def _is_leaf(spec: Any) -> bool:
    """One saved loss or metric (not a per-output dict): a config dict, a torch loss or a custom marker."""
    return isinstance(spec, dict) and ("class_name" in spec or is_custom(spec) or set(spec) == {"torch_loss", "config"})


def map_spec(fn: Callable[[Any], Any], spec: Any) -> Any:
    """Apply ``fn`` to every loss or metric of a compile spec (per-output dicts and lists kept)."""
    if isinstance(spec, dict) and not _is_leaf(spec):
        return {k: map_spec(fn, v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [map_spec(fn, v) for v in spec]
    return fn(spec)
