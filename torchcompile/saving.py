# SPDX-License-Identifier: Apache-2.0
"""Files: weights, whole models and training state, written atomically and read safely.

Owns: the atomic write (a temporary file in the same folder, flush + fsync, rename, so a
process killed at any moment leaves the previous good file), reading with
``torch.load(weights_only=True)`` (a crafted pickle never runs code) and the errors a
missing, corrupt or mismatching file gives, all-or-nothing weight loading, Keras'
``get_weights``/``set_weights``, and the compile configuration round trip of ``save`` /
``load_model``. Not: when files are written (callbacks/), the architecture (it lives in the
user's code and is never pickled: ``load_model`` takes the module).
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from torchcompile import losses as losses_module
from torchcompile import metrics as metrics_module
from torchcompile.optimizers import schedules
from torchcompile.optimizers.step_hooks import KerasStepHooks, hooks_of

__all__ = [
    "atomic_write",
    "save_file",
    "read_file",
    "get_weights",
    "set_weights",
    "load_state_dict",
    "save_weights",
    "load_weights",
    "save_model",
    "load_model",
    "MODEL_FORMAT",
]

MODEL_FORMAT = "torchcompile.model"
_VERSION = 1
# Optimizer classes load_model may import by name; anything else must come in custom_objects.
_OPTIMIZER_MODULES = ("torch.optim", "torchcompile.optimizers")
_HOOK_ARGS = (
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "momentum_key",
    "ema_momentum",
    "ema_overwrite_frequency",
)


# ---------------------------------------------------------------- files
def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)`` so that it is either the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the
    file is renamed over ``path`` (atomic on POSIX and Windows); the folder is fsynced too.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_file(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path``, atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def read_file(path: str | os.PathLike, what: str = "weights") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that say what went wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No {what} file at {path!r}: check the path (and that the save finished). Received: filepath={path!r}"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"Expected a {what} file but {path!r} is a folder; pass the file inside it. Received: filepath={path!r}"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found:
            raise ValueError(
                f"Refusing to load {what} from {path!r}: the file asks to unpickle "
                f"{found.group(1)!r}, a Python object that is not a tensor or a plain container, "
                "and unpickling it could run code. torchcompile reads tensors and plain data only; "
                "load files you trust with plain torch.load. "
                f"Received: filepath={path!r}"
            ) from e
        raise ValueError(_corrupt(what, path, e)) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, AttributeError) as e:
        raise ValueError(_corrupt(what, path, e)) from e


def _corrupt(what: str, path: str, error: BaseException) -> str:
    detail = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    return (
        f"Could not read {what} from {path!r}: the file is truncated, corrupt or not a torch file "
        f"({type(error).__name__}: {detail[:200]}). Save it again, or restore a backup. "
        f"Received: filepath={path!r}"
    )


# ---------------------------------------------------------------- weights
def get_weights(module: torch.nn.Module) -> list[np.ndarray]:
    """Every tensor of ``module.state_dict()`` (parameters and buffers), in order, as NumPy arrays."""
    return [_to_numpy(t) for t in module.state_dict().values() if isinstance(t, torch.Tensor)]


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()


def set_weights(module: torch.nn.Module, weights: list) -> None:
    """Keras' ``set_weights``: one array per state_dict tensor, same order and shapes; all or nothing."""
    state = {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}
    weights = list(weights)
    if len(weights) != len(state):
        raise ValueError(
            f"set_weights expects {len(state)} arrays (one per entry of the module's state_dict: "
            f"{list(state)}), got {len(weights)}. Pass the list get_weights() returns. "
            f"Received: len(weights)={len(weights)}"
        )
    bad = [
        f"{k}: expected {tuple(v.shape)}, got {tuple(np.shape(w))}"
        for (k, v), w in zip(state.items(), weights)
        if tuple(v.shape) != tuple(np.shape(w))
    ]
    if bad:
        raise ValueError(
            "set_weights got arrays of the wrong shape; pass arrays shaped like get_weights()'s. "
            f"Received: {'; '.join(bad)}"
        )
    with torch.no_grad():
        for (_key, target), value in zip(state.items(), weights):
            target.copy_(torch.as_tensor(np.asarray(value)).to(target.dtype))


def load_state_dict(module: torch.nn.Module, state: Any, source: str = "the file") -> None:
    """``module.load_state_dict(state)``, checked first: a mismatch changes no weight and names the keys."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(
            f"{source} does not hold a state_dict (a dict of name -> tensor); it holds a "
            f"{type(state).__name__}. Save with model.save_weights() or torch.save(module.state_dict()). "
            f"Received: {type(state).__name__}"
        )
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs module {tuple(v.shape)}"
        for k, v in own.items()
        if k in state
        and isinstance(v, torch.Tensor)
        and isinstance(state[k], torch.Tensor)
        and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing keys {missing}" if missing else "",
            f"unexpected keys {unexpected}" if unexpected else "",
            f"shape mismatches [{'; '.join(shapes)}]" if shapes else "",
        ]
        raise ValueError(
            f"The weights in {source} do not fit {type(module).__name__}, so none were loaded: "
            "the file was saved from another architecture (or another version of it). Load it into "
            f"the module it came from. Received: {', '.join(p for p in parts if p)}"
        )
    module.load_state_dict(state)


def save_weights(model: Any, path: str | os.PathLike, overwrite: bool = True) -> None:
    """The module's state_dict, as a plain file ``torch.load(path, weights_only=True)`` reads."""
    _check_overwrite(path, overwrite)
    save_file(model.module.state_dict(), path)


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Load a state_dict file (ours or plain torch's), or the weights of a ``save``/backup file."""
    state = read_file(path, "weights")
    if isinstance(state, dict) and "format" in state and "weights" in state:
        state = state["weights"]
    load_state_dict(model.module, state, source=repr(os.fspath(path)))


def _check_overwrite(path: str | os.PathLike, overwrite: bool) -> None:
    if not overwrite and os.path.exists(path):
        raise FileExistsError(
            f"{os.fspath(path)!r} exists and overwrite=False; pass overwrite=True or "
            f"another path. Received: filepath={os.fspath(path)!r}, overwrite=False"
        )


# ---------------------------------------------------------------- whole models
def save_model(model: Any, path: str | os.PathLike, overwrite: bool = True, epoch: int | None = None) -> None:
    """Weights, optimizer state, compile configuration and epoch count, in one file.

    Losses, metrics or optimizer pieces that are Python callables cannot live in a
    weights-only file; they are stored by name (a warning lists them) and ``load_model``
    asks for them in ``custom_objects``.
    """
    _check_overwrite(path, overwrite)
    if epoch is None:
        history = getattr(model, "history", None)
        epochs = getattr(history, "epoch", None)
        epoch = epochs[-1] + 1 if epochs else getattr(model, "initial_epoch", 0)
    config = compile_config(model) if model.compiled else None
    custom = sorted(_custom_names(config))
    if custom:
        warnings.warn(
            f"Saving {os.fspath(path)!r}: {custom} are Python objects that a weights-only file cannot "
            "hold; they are saved by name. Load with tc.load_model(path, module=..., custom_objects="
            "{name: object}) or with compile=False and compile again.",
            stacklevel=3,
        )
    save_file(
        {
            "format": MODEL_FORMAT,
            "version": _VERSION,
            "module_class": type(model.module).__name__,
            "weights": model.module.state_dict(),
            "epoch": int(epoch),
            "compile": config,
            "optimizer": model.optimizer.state_dict() if model.optimizer is not None else None,
        },
        path,
    )


def load_model(
    path: str | os.PathLike,
    module: torch.nn.Module | None = None,
    custom_objects: dict | None = None,
    compile: bool = True,
    device: str | torch.device = "auto",
) -> Any:
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
    """
    from torchcompile.model import Model  # model.py imports this module's users

    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            "tc.load_model needs the architecture as a module: files hold weights only, never code. "
            "Build the module as when it was saved and pass it: tc.load_model(path, module=Net()). "
            f"Received: module={module!r}"
        )
    data = read_file(path, "model")
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not a file written by model.save(); for a state_dict file use "
            f"model.load_weights(path). Received: filepath={os.fspath(path)!r}"
        )
    model = Model(module, device=device)
    load_state_dict(model.module, data["weights"], source=repr(os.fspath(path)))
    model.initial_epoch = int(data.get("epoch", 0))
    if compile and data.get("compile") is not None:
        compile_from_config(model, data["compile"], custom_objects or {})
        if data.get("optimizer") is not None and model.optimizer is not None:
            model.optimizer.load_state_dict(data["optimizer"])
    return model


# ---------------------------------------------------------------- compile configuration
def compile_config(model: Any) -> dict[str, Any]:
    """compile()'s arguments as plain data: ids, ``{"class_name", "config"}`` dicts, or ``{"custom": name}``."""
    loss, metrics = model._compiled_loss, model._compiled_metrics
    return {
        "optimizer": optimizer_config(model.optimizer) if model.optimizer is not None else None,
        "loss": _map(lambda v: _serialize(v, losses_module.get), loss.loss) if loss else None,
        "loss_weights": loss.loss_weights if loss else None,
        "metrics": _map(lambda v: _serialize(v, metrics_module.get), metrics.metrics) if metrics else None,
        "weighted_metrics": (
            _map(lambda v: _serialize(v, metrics_module.get), metrics.weighted_metrics) if metrics else None
        ),
        "jit_compile": model.jit_compile,
        "steps_per_execution": model.steps_per_execution,
        "cuda_graph": getattr(model, "cuda_graph", False),
        "dtype_policy": getattr(getattr(model, "dtype_policy", None), "name", None),
    }


def compile_from_config(model: Any, config: dict[str, Any], custom_objects: dict) -> None:
    """Compile ``model`` as ``compile_config`` described it; every missing custom object is named at once."""
    missing = sorted(n for n in _custom_names(config) if n not in custom_objects)
    if missing:
        raise ValueError(
            f"The saved model was compiled with {missing}, Python objects a weights-only file cannot "
            "hold. Pass them: tc.load_model(path, module=..., custom_objects={name: object}), or "
            f"load with compile=False and call compile() yourself. Received: "
            f"custom_objects={sorted(custom_objects)}"
        )

    def resolver(get: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def resolve(entry: Any) -> Any:
            if _is_custom(entry):
                return custom_objects[entry["custom"]]
            return get(entry) if isinstance(entry, dict) else entry  # compile reads dicts as per-output specs

        return resolve

    optimizer = None
    if config.get("optimizer") is not None:
        optimizer = build_optimizer(config["optimizer"], list(model.module.parameters()), custom_objects)
    metric = resolver(metrics_module.get)
    model.compile(
        optimizer=optimizer,
        loss=_map(resolver(losses_module.get), config["loss"]),
        metrics=_map(metric, config["metrics"]),
        loss_weights=config["loss_weights"],
        weighted_metrics=_map(metric, config["weighted_metrics"]),
        jit_compile=config["jit_compile"],
        steps_per_execution=config["steps_per_execution"],
        cuda_graph=config.get("cuda_graph", False),
        dtype_policy=config.get("dtype_policy"),
    )


def optimizer_config(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The torch class, its defaults and the Keras step hooks' arguments (state goes in state_dict)."""
    cls = type(optimizer)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not cls.__module__.startswith(_OPTIMIZER_MODULES):
        name = {"custom": cls.__qualname__}
    defaults = {k: v for k, v in optimizer.defaults.items() if _is_plain(v)}
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


def build_optimizer(config: dict[str, Any], params: list, custom_objects: dict) -> torch.optim.Optimizer:
    """The torch optimizer ``optimizer_config`` described, over ``params``, with its hooks attached."""
    name = config["class_name"]
    cls = custom_objects[name["custom"]] if _is_custom(name) else _import_optimizer(name)
    defaults = dict(config["defaults"])
    if defaults.get("fused") and not all(p.is_cuda for p in params):
        defaults["fused"] = None
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


def _import_optimizer(name: str) -> type:
    module_name, _, qualname = name.rpartition(".")
    if not module_name.startswith(_OPTIMIZER_MODULES):
        raise ValueError(f"Unknown optimizer class {name!r}; pass it in custom_objects. Received: {name!r}")
    return getattr(importlib.import_module(module_name), qualname)


def _resolve_schedule(schedule: Any, custom_objects: dict) -> Any:
    if schedule is None:
        return None
    return custom_objects[schedule["custom"]] if _is_custom(schedule) else schedules.deserialize(schedule)


def _serializable_schedule(schedule: Any) -> bool:
    if not isinstance(schedule, schedules.LearningRateSchedule):
        return False
    try:
        return _is_plain(schedules.serialize(schedule))
    except (TypeError, ValueError, NotImplementedError):
        return False


def _serialize(value: Any, get: Callable[[Any], Any]) -> Any:
    """An id or plain config when ``get`` can rebuild it from one; else ``{"custom": name}``."""
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "get_config") and not isinstance(value, type):
        try:
            entry = {"class_name": type(value).__name__, "config": value.get_config()}
            if _is_plain(entry):
                get(entry)
                return entry
        except (TypeError, ValueError, KeyError, AttributeError):
            pass
    name = getattr(value, "__name__", None) or getattr(value, "name", None) or type(value).__name__
    return {"custom": str(name)}


def _map(fn: Callable[[Any], Any], spec: Any) -> Any:
    if isinstance(spec, dict) and not ("class_name" in spec or _is_custom(spec)):
        return {k: _map(fn, v) for k, v in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_map(fn, v) for v in spec]
    return fn(spec)


def _is_custom(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"custom"}


def _custom_names(config: Any) -> set[str]:
    if _is_custom(config):
        return {config["custom"]}
    if isinstance(config, dict):
        return set().union(*(_custom_names(v) for v in config.values())) if config else set()
    if isinstance(config, (list, tuple)):
        return set().union(*(_custom_names(v) for v in config)) if config else set()
    return set()


def _is_plain(value: Any) -> bool:
    """Data a weights-only file holds: None, bool, int, float, str and lists/tuples/dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False
