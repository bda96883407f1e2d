# SPDX-License-Identifier: Apache-2.0
"""Files: weights, whole models and training state, written atomically and read safely.

Owns: the one atomic write every file goes through (a temporary file in the same folder, created
as ``open()`` would create it or with the mode of the file it replaces, flushed, fsynced and renamed,
so a process killed at any moment leaves the previous good file); reading with
``torch.load(weights_only=True)`` (a crafted pickle never runs code) and the ``ValueError`` naming
the file that any missing, short, foreign or corrupt file gives; format-version checks; all-or-
nothing weight loading (everything is checked before anything is copied); Keras'
``get_weights``/``set_weights``; and writing a whole model (``save_model``): weights, optimizer
state and the compile configuration (compile_config.py, re-exported). A sharded (FSDP) model's
files hold its whole state, gathered by every process and written by rank 0 (sharded_state.py),
so one process loads them; loading into a sharded model cuts the whole state to its shards.
Models are duck-typed through public attributes (``module``, ``optimizer``, ``compiled``,
``get_compile_config()``); this module imports no ``Model``. Re-exports the optimizer state checks
(optimizers/serialization.py) for the callbacks. Not: reading a whole model back (loading.py),
when files are written (callbacks/), the architecture (the user's code; never pickled).
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import stat
import warnings
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from torchcompile import sharded_state
from torchcompile.compile_config import TORCH_LOSSES, compile_config, map_spec  # noqa: F401 - re-exported
from torchcompile.core import process
from torchcompile.optimizers import serialization
from torchcompile.optimizers.serialization import (  # re-exported: BackupAndRestore checks its optimizer state here
    check_optimizer_state,
    optimizer_class_name,
)
from torchcompile.sharded_state import is_sharded  # noqa: F401 - re-exported for the callbacks

__all__ = [
    "atomic_write",
    "save_file",
    "read_file",
    "check_version",
    "check_suffix",
    "get_weights",
    "set_weights",
    "check_state_dict",
    "load_state_dict",
    "save_weights",
    "load_weights",
    "optimizer_class_name",
    "check_optimizer_state",
    "load_optimizer_state",
    "model_state",
    "optimizer_state",
    "is_sharded",
    "save_model",
    "read_model_file",
    "compile_config",
    "map_spec",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "TORCH_LOSSES",
]

MODEL_FORMAT = "torchcompile.model"
# 1: the first layout. 2: adds "optimizer_class", the module's __qualname__ and torch loss modules
# recorded as {"torch_loss": name, "config": {...}}. A reader accepts every version up to its own.
MODEL_VERSION = 2
# Suffixes of Keras' own formats: writing a torch file under them would mislead every reader.
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


# ---------------------------------------------------------------- files
def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)`` so that it is either the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed and fsynced, and the file is
    renamed over ``path`` (atomic on POSIX and Windows); the folder is fsynced too. A new file gets
    the mode ``open()`` gives (0o666 less the umask); a replaced file keeps its mode.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) else None
    fd, tmp = _create_temporary(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _create_temporary(folder: str, name: str) -> tuple[int, str]:
    # Not tempfile.mkstemp: it creates files 0600. os.open(..., 0o666) lets the umask decide, as open() does.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(
        f"Could not create a temporary file next to {name!r} in {folder!r}: 100 random names were taken; "
        f"remove stale '.{name}.*.tmp' files there. Received: filepath={os.path.join(folder, name)!r}"
    )


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
    """``torch.load(path, weights_only=True)`` on the CPU; any unreadable file is a ValueError naming it."""
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
    except OSError:
        raise  # the file could not be read at all (permissions, I/O): not a question of its content
    except Exception as e:  # short and foreign files fail deep in the unpickler (struct.error, IndexError, ...)
        raise ValueError(_corrupt(what, path, e)) from e


def _corrupt(what: str, path: str, error: BaseException) -> str:
    detail = str(error).strip().splitlines()[-1] if str(error).strip() else ""
    return (
        f"Could not read {what} from {path!r}: the file is truncated, corrupt or not a torch file "
        f"({type(error).__name__}: {detail[:200]}). Save it again, or restore a backup. "
        f"Received: filepath={path!r}"
    )


def check_version(data: dict, supported: int, path: str | os.PathLike, what: str) -> None:
    """Refuse a file whose ``data["version"]`` is newer than ``supported``, naming both versions."""
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version > supported:
        raise ValueError(
            f"{os.fspath(path)!r} is a {what} file of format version {version!r}, but this torchcompile reads "
            f"versions up to {supported}: it was written by a newer torchcompile. Upgrade torchcompile to load "
            f"it. Received: version={version!r}, supported={supported}"
        )


def check_suffix(path: str | os.PathLike, method: str) -> None:
    """Refuse Keras' file suffixes: what we write is a torch file, not a Keras archive or HDF5."""
    name = os.fspath(path)
    suffix = next((s for s in KERAS_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is not None:
        raise ValueError(
            f"{method}() writes a torch file (torch.save of tensors and plain data, read back with "
            f"torch.load(weights_only=True)), not Keras' {suffix!r} format, so a {suffix!r} name would "
            f"mislead whoever opens it. Use a '.pt' or '.pth' name. Received: filepath={name!r}"
        )


# ---------------------------------------------------------------- weights
def get_weights(module: torch.nn.Module) -> list[np.ndarray]:
    """Every tensor of ``module.state_dict()`` (parameters and buffers), in order, as NumPy arrays.

    Sharded (FSDP), every process gets the whole arrays: call it on every process."""
    state = sharded_state.model_state(module, everywhere=True)
    return [_to_numpy(t) for t in state.values() if isinstance(t, torch.Tensor)]


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
    values, bad = [], []
    for (key, target), weight in zip(state.items(), weights):
        value = weight.detach() if isinstance(weight, torch.Tensor) else np.asarray(weight)
        if tuple(value.shape) != tuple(target.shape):
            bad.append(f"{key}: expected {tuple(target.shape)}, got {tuple(value.shape)}")
        elif isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
            bad.append(f"{key}: expected numbers, got an array of dtype {value.dtype}")
        else:
            values.append(torch.as_tensor(value))
    if bad:
        raise ValueError(
            "set_weights got arrays that do not fit, so no weight was changed; pass arrays shaped like "
            f"get_weights()'s, holding numbers. Received: {'; '.join(bad)}"
        )
    if is_sharded(module):  # every process sets the same whole arrays
        sharded_state.load_model_state(module, {**module.state_dict(), **dict(zip(state, values))})
        return
    with torch.no_grad():
        for target, value in zip(state.values(), values):
            target.copy_(value)


def check_state_dict(module: torch.nn.Module, state: Any, source: str = "the file") -> None:
    """Raise the ValueError ``load_state_dict`` would, without changing anything."""
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(
            f"{source} does not hold a state_dict (a dict of name -> tensor); it holds a "
            f"{type(state).__name__}. Save with model.save_weights() or torch.save(module.state_dict()). "
            f"Received: {type(state).__name__}"
        )
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    tensors = {k: v for k, v in own.items() if k in state and isinstance(v, torch.Tensor)}
    not_tensors = [f"{k}: {type(state[k]).__name__}" for k in tensors if not isinstance(state[k], torch.Tensor)]
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs module {tuple(v.shape)}"
        for k, v in tensors.items()
        if isinstance(state[k], torch.Tensor) and state[k].shape != v.shape
    ]
    if missing or unexpected or not_tensors or shapes:
        parts = [
            f"missing keys {missing}" if missing else "",
            f"unexpected keys {unexpected}" if unexpected else "",
            f"entries that are not tensors [{'; '.join(not_tensors)}]" if not_tensors else "",
            f"shape mismatches [{'; '.join(shapes)}]" if shapes else "",
        ]
        raise ValueError(
            f"The weights in {source} do not fit {type(module).__name__}, so none were loaded: "
            "the file was saved from another architecture (or another version of it). Load it into "
            f"the module it came from. Received: {', '.join(p for p in parts if p)}"
        )


def load_state_dict(module: torch.nn.Module, state: Any, source: str = "the file") -> None:
    """``module.load_state_dict(state)``, checked first: a mismatch changes no weight and names the keys."""
    check_state_dict(module, state, source)
    sharded_state.load_model_state(module, state)  # sharded: every process loads the same whole state


def save_weights(model: Any, path: str | os.PathLike, overwrite: bool = True) -> None:
    """The module's state_dict, as a plain file ``torch.load(path, weights_only=True)`` reads."""
    check_suffix(path, "save_weights")
    _check_overwrite(path, overwrite)
    if not is_sharded(model.module):
        save_file(model.module.state_dict(), path)
        return
    state = model_state(model)  # sharded: every process gathers, rank 0 writes, the others wait for the file
    if process.is_rank_zero():
        save_file(state, path)
    sharded_state.barrier()


def model_state(model: Any) -> dict[str, Any]:
    """The module's whole state_dict: sharded, gathered by every process and kept by rank 0 (``{}`` elsewhere)."""
    return sharded_state.model_state(model.module)


def optimizer_state(model: Any) -> dict[str, Any] | None:
    """The optimizer's state_dict as one process's optimizer has it (sharded: gathered, on rank 0), or None."""
    optimizer = getattr(model, "optimizer", None)
    return sharded_state.optimizer_state(model.module, optimizer) if optimizer is not None else None


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, saved_class: str | None, source: str) -> None:
    """``optimizer.load_state_dict(state)`` after ``check_optimizer_state``; a whole state is cut to the shards
    of a sharded optimizer's parameters."""
    check_optimizer_state(optimizer, state, saved_class, source)
    optimizer.load_state_dict(sharded_state.shard_optimizer_state(optimizer, state))


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Load a state_dict file (ours or plain torch's), or the weights of a ``save``/backup file."""
    state = read_file(path, "weights")
    if isinstance(state, dict) and "format" in state and "weights" in state:
        if state["format"] == MODEL_FORMAT:
            check_version(state, MODEL_VERSION, path, "model")
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
    check_suffix(path, "save")
    _check_overwrite(path, overwrite)
    if epoch is None:
        history = getattr(model, "history", None)
        epochs = getattr(history, "epoch", None)
        epoch = epochs[-1] + 1 if epochs else getattr(model, "initial_epoch", 0)
    config = compile_config(model) if model.compiled else None
    custom = sorted(serialization.custom_names(config))
    if custom:
        warnings.warn(
            f"Saving {os.fspath(path)!r}: {custom} are Python objects that a weights-only file cannot "
            "hold; they are saved by name. Load with tc.load_model(path, module=..., custom_objects="
            "{name: object}) or with compile=False and compile again.",
            stacklevel=3,
        )
    optimizer, sharded = model.optimizer, is_sharded(model.module)
    weights, optimizer_entry = model_state(model), optimizer_state(model)  # sharded: gathered by every process
    if sharded and not process.is_rank_zero():
        sharded_state.barrier()  # rank 0 writes
        return
    save_file(
        {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "module_class": sharded_state.module_class(model.module).__qualname__,
            "weights": weights,
            "epoch": int(epoch),
            "compile": config,
            "optimizer": optimizer_entry,
            "optimizer_class": optimizer_class_name(optimizer) if optimizer is not None else None,
        },
        path,
    )
    if sharded:
        sharded_state.barrier()


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """A file ``save_model`` wrote, checked: its format marker, its version and the entries every version has."""
    data = read_file(path, "model")
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{os.fspath(path)!r} is not a file written by model.save(); for a state_dict file use "
            f"model.load_weights(path). Received: filepath={os.fspath(path)!r}"
        )
    check_version(data, MODEL_VERSION, path, "model")
    absent = [key for key in ("weights", "compile", "optimizer") if key not in data]
    if absent:
        raise ValueError(
            f"{os.fspath(path)!r} is a model file without {absent}: it is damaged or was not written by "
            f"model.save(). Save it again. Received: keys={sorted(data)}"
        )
    return data
