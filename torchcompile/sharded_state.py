# SPDX-License-Identifier: Apache-2.0
"""The full state of a module sharded with FSDP2 (``fully_shard``), in the layout one process has.

Owns: whether a module is sharded (its parameters are DTensors); gathering its state_dict and
its optimizer's state_dict into plain tensors, with ``torch.distributed.checkpoint.state_dict``
(rank 0 keeps them on the CPU; every process takes part); loading a plain state back into the
sharded module (``set_model_state_dict``) and optimizer (each tensor cut into this process's
shard); and ``agree``: rank 0's decision, on every process. Without sharding each function is
the plain torch call. Not: sharding (engine/sharding.py), files (saving.py).

Every function here except ``is_sharded`` is a collective under sharding: every process calls it,
or the others wait.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

try:
    from torch.distributed.tensor import DTensor, distribute_tensor
except ImportError:  # a build without torch.distributed: nothing can be sharded
    DTensor = distribute_tensor = None  # type: ignore[assignment,misc]


def is_sharded(module: nn.Module) -> bool:
    """Whether ``module`` holds sharded parameters (DTensors, as ``fully_shard`` leaves them)."""
    return DTensor is not None and any(isinstance(p, DTensor) for p in module.parameters())


def module_class(module: nn.Module) -> type:
    """The module's own class: ``fully_shard`` swaps it for a subclass named ``FSDP<name>``."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:
        return type(module)
    return next(c for c in type(module).__mro__ if not issubclass(c, FSDPModule))


def _is_rank_zero() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def model_state(module: nn.Module, everywhere: bool = False) -> dict[str, Any]:
    """``module.state_dict()`` with every tensor whole, on the CPU when gathered.

    Sharded, the gathered state is on rank 0 only (the others get ``{}``), unless ``everywhere``.
    """
    if not is_sharded(module):
        return module.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, broadcast_from_rank0=False)
    if everywhere:
        return {k: _whole(v) for k, v in module.state_dict().items()}
    return get_model_state_dict(module, options=options)


def _whole(value: Any) -> Any:
    return value.full_tensor().cpu() if DTensor is not None and isinstance(value, DTensor) else value


def load_model_state(module: nn.Module, state: dict[str, Any]) -> None:
    """``module.load_state_dict(state)`` from a whole (unsharded) state every process holds."""
    if not is_sharded(module):
        module.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(module, state, options=StateDictOptions(full_state_dict=True, strict=True))


def optimizer_state(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer.state_dict()`` with every tensor whole (rank 0; the others get ``{}`` when sharded).

    Keyed by parameter index, as one process's optimizer is, so a single process loads it.
    An optimizer without state yet is returned as is: ``get_optimizer_state_dict`` would first
    initialise it with a zero-gradient step, which runs the optimizer's hooks.
    """
    plain = optimizer.state_dict()
    if not is_sharded(module) or not optimizer.state:
        return plain
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    full = get_optimizer_state_dict(module, optimizer, options=options)
    if not _is_rank_zero():
        return {}
    names = {p: name for name, p in module.named_parameters()}
    index = {names[p]: i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    return {"state": {index[k]: v for k, v in full["state"].items()}, "param_groups": plain["param_groups"]}


def shard_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> dict[str, Any]:
    """A whole optimizer state (``optimizer_state``'s layout) cut to this process's shards.

    Each state tensor shaped like its sharded parameter becomes a DTensor laid out as the
    parameter (every process holds the same whole state, so each keeps its own chunk, without
    communication); scalars such as Adam's ``step`` stay as they are. Not through
    ``set_optimizer_state_dict``, which first runs a zero-gradient step (and the optimizer's hooks).
    """
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if DTensor is None or not any(isinstance(p, DTensor) for p in params):
        return state
    sharded = {}
    for key, entry in state.get("state", {}).items():
        param = params[key] if isinstance(key, int) and 0 <= key < len(params) else None
        sharded[key] = {name: _shard_like(value, param) for name, value in entry.items()}
    return {**state, "state": sharded}


def _shard_like(value: Any, param: Any) -> Any:
    if not isinstance(param, DTensor) or not isinstance(value, torch.Tensor) or isinstance(value, DTensor):
        return value
    if value.dim() == 0 or value.shape != param.shape:
        return value
    mesh = param.device_mesh
    local = value.to(mesh.device_type)
    return distribute_tensor(local, mesh, param.placements, src_data_rank=None)


def agree(value: Any) -> Any:
    """Rank 0's ``value`` on every process (one broadcast); ``value`` itself in one process."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every process (after rank 0 wrote a file the others may read); nothing in one process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
