# SPDX-License-Identifier: Apache-2.0
"""Sharded data parallel: ``tc.distribution.FSDP`` turned into torch's ``fully_shard`` (FSDP2) calls.

Owns: sharding a module in place (each chosen unit, then the root, on a 1-D device mesh of
every process), choosing the units (named by the user, or the repeated blocks holding most of
the parameters), FSDP2's ``MixedPrecisionPolicy`` from the dtype policy, ``find_unused_parameters``
(FSDP2's ``set_reduce_scatter_unused_params``), and the refusals: one process, a module without
parameters, CUDA graphs, an optimizer built over the parameters sharding replaced.
Not: the DDP path (engine/distributed.py), gathering and loading whole state (sharded_state.py).

``fully_shard`` replaces every parameter by a DTensor holding this process's shard (dim 0 cut
in N chunks). Sharding runs when the model is built, so ``model.parameters()`` are the sharded
parameters from then on and an optimizer built afterwards (or by compile from an id) holds
them. Sync points: per unit and step, one all-gather in the forward, one in the backward
(unless ``reshard_after_forward=False``) and one reduce-scatter of its gradients.
"""

from __future__ import annotations

import fnmatch
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from torchcompile import distribution as distribution_module
from torchcompile import mixed_precision
from torchcompile.core.process import is_distributed
from torchcompile.sharded_state import is_sharded

BLOCKS_SHARE = 0.5  # repeated blocks holding at least this share of the parameters are the default units
CHILD_SHARE = 0.1  # else each child of the root holding at least this share is a unit


@dataclass
class _Sharded:
    """What sharding recorded about a module: the dtype it gathers in, the parameters it replaced."""

    param_dtype: torch.dtype | None
    auto_precision: bool
    replaced: dict[int, Any] = field(default_factory=dict)  # id -> weakref of each parameter before sharding


_SHARDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def wants_sharding(distribution: Any) -> bool:
    """Whether ``distribution`` (as ``tc.Model`` got it, or the global one) asks for FSDP."""
    return isinstance(distribution_module.get(distribution), distribution_module.FSDP)


def shard(module: nn.Module, device: torch.device, distribution: Any, policy: Any = None) -> None:
    """Shard ``module`` in place when ``distribution`` asks for FSDP; nothing otherwise.

    Called when the model is built (``policy``: None, the global dtype policy) and again by
    compile (its ``policy``): a module already sharded is left as it is, with a warning when
    its gathers' dtype differs from compile's policy.
    """
    choice = distribution_module.get(distribution)
    if not isinstance(choice, distribution_module.FSDP):
        return
    policy = mixed_precision.get(policy) if policy is not None else mixed_precision.global_policy()
    if module in _SHARDED or is_sharded(module):
        _check_precision(module, policy)
        return
    if not is_distributed():
        raise RuntimeError(
            "distribution=FSDP shards the model across processes, so it needs several: launch the "
            "script with `torchrun --nproc_per_node=N script.py` (N >= 2), or pass distribution=None to "
            f"train in this one process. Received: distribution={choice!r}, world_size={_world_size()}"
        )
    params = list(module.parameters())
    if not params:
        raise ValueError(
            f"distribution=FSDP shards the module's parameters, but {type(module).__name__} has none "
            "(a subclass of tc.Model builds its layers after tc.Model.__init__: they are sharded at "
            f"compile). Build the layers first, or pass distribution=None. Received: {type(module).__name__}"
        )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mp_policy, param_dtype = _mp_policy(choice.mixed_precision, policy)
    record = _Sharded(param_dtype, choice.mixed_precision == "auto", {id(p): weakref.ref(p) for p in params})
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    options = {"mesh": mesh, "reshard_after_forward": choice.reshard_after_forward, "mp_policy": mp_policy}
    for unit in units(module, choice.modules):
        fully_shard(unit, **options)
    fully_shard(module, **options)
    if choice.find_unused_parameters:
        module.set_reduce_scatter_unused_params(True)
    _SHARDED[module] = record


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _mp_policy(setting: Any, policy: mixed_precision.Policy) -> tuple[Any, torch.dtype | None]:
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if setting is None:
        return MixedPrecisionPolicy(), None
    if setting == "auto":
        dtype = policy.autocast_dtype
        return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32 if dtype else None), dtype
    if isinstance(setting, MixedPrecisionPolicy):
        return setting, setting.param_dtype
    raise TypeError(
        "FSDP(mixed_precision=...) takes 'auto', None or a torch.distributed.fsdp.MixedPrecisionPolicy. "
        f"Received: {type(setting).__name__}"
    )


def _check_precision(module: nn.Module, policy: mixed_precision.Policy) -> None:
    record = _SHARDED.get(module)
    if record is None or not record.auto_precision or record.param_dtype == policy.autocast_dtype:
        return
    sharded = str(record.param_dtype or torch.float32).replace("torch.", "")
    warnings.warn(
        f"The module was sharded when the model was built, gathering its parameters in {sharded}, but "
        f"compile(dtype_policy={policy.name!r}) asks for {policy.compute_dtype}: the gathers stay {sharded} "
        "(autocast still applies the policy to the computation). Set the policy before building the "
        "model (tc.mixed_precision.set_global_policy(...)) or pass FSDP(mixed_precision="
        f"MixedPrecisionPolicy(...)). Received: dtype_policy={policy.name!r}",
        UserWarning,
        stacklevel=4,
    )


def units(module: nn.Module, spec: list | None) -> list[nn.Module]:
    """The submodules to shard on their own, innermost first (``fully_shard`` goes bottom-up)."""
    named = [(name, sub) for name, sub in module.named_modules() if sub is not module]
    if spec is None:
        chosen = _default_units(module)
    elif not spec:
        return []  # modules=[]: the root alone, one unit
    else:
        chosen = [sub for name, sub in named if any(_matches(name, sub, s) for s in spec)]
        if not chosen:
            names = [name for name, _ in named][:12]
            raise ValueError(
                f"FSDP(modules={spec!r}) names no submodule of {type(module).__name__}; pass module classes, "
                f"names from named_modules() (shell patterns allowed), or modules. Some names: {names}. "
                f"Received: modules={spec!r}"
            )
    order = {id(sub): i for i, (_, sub) in enumerate(named)}
    return sorted((c for c in chosen if _count(c)), key=lambda c: -order[id(c)])


def _matches(name: str, sub: nn.Module, spec: Any) -> bool:
    if isinstance(spec, type):
        return isinstance(sub, spec)
    if isinstance(spec, str):
        return fnmatch.fnmatchcase(name, spec)
    return sub is spec


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _default_units(module: nn.Module) -> list[nn.Module]:
    """The repeated blocks (the layers of a ModuleList / Sequential) holding most of the parameters,
    else the root's children holding at least a tenth of them each."""
    total = _count(module) or 1
    best: tuple[float, int, list[nn.Module]] = (0.0, 0, [])
    for sub in module.modules():
        if not isinstance(sub, (nn.ModuleList, nn.Sequential)):
            continue
        layers = [layer for layer in sub.children() if _count(layer)]
        share = sum(_count(layer) for layer in layers) / total
        if len(layers) >= 2 and share >= BLOCKS_SHARE and (share, len(layers)) > best[:2]:
            best = (share, len(layers), layers)
    if best[2]:
        return best[2]
    children = [child for child in module.children() if _count(child) >= CHILD_SHARE * total]
    return children if len(children) >= 2 else []


def check_compile(module: nn.Module, optimizer: Any, cuda_graph: bool) -> None:
    """compile()'s refusals for a sharded module: CUDA graphs, and an optimizer over the replaced parameters."""
    if not is_sharded(module):
        return
    if cuda_graph:
        raise ValueError(
            "cuda_graph=True cannot capture sharded training: FSDP gathers and frees parameters and "
            "launches collectives on every step, outside what a CUDA graph replays. Use cuda_graph=False "
            "(jit_compile=True still compiles the steps). Received: cuda_graph=True, distribution=FSDP"
        )
    record = _SHARDED.get(module)
    if record is None or not isinstance(optimizer, torch.optim.Optimizer):
        return
    stale = sum(1 for group in optimizer.param_groups for p in group["params"] if _is(record.replaced.get(id(p)), p))
    if stale:
        raise ValueError(
            f"This {type(optimizer).__name__} was built over the module's parameters before FSDP sharded "
            "them; sharding replaced every parameter by its shard (a DTensor), so it would update tensors "
            "the model no longer uses. Build it after tc.Model(module, distribution=...), over "
            "model.parameters(), or pass an id ('adam') or a tc.optimizers instance, which compile builds "
            f"over the shards. Received: optimizer holding {stale} replaced parameters"
        )


def _is(ref: Any, param: Any) -> bool:
    return ref is not None and ref() is param
