# SPDX-License-Identifier: Apache-2.0
"""Data-parallel fit / evaluate / predict across processes (torchrun, DistributedDataParallel).

Owns: joining the process group (one the user initialised is used as is; else torchrun's
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, with nccl on CUDA
and gloo on the CPU), each process's device (``cuda:LOCAL_RANK``), wrapping the module in
``DistributedDataParallel`` (kept apart from ``model.module``; ``tc.distribution.DataParallel``'s
``find_unused_parameters``), summing metric states across processes at the end of an epoch,
and gathering predictions in order. Re-exports which samples each process takes
(data_sharding.py: ``Sharding``, Keras' global ``batch_size``, ``reshard_loader``) and sharding
a module with FSDP2 (sharding.py: ``shard``, ``check_compile``).
Not: batching (data_adapters.py) or the loop (loop.py); they call in here.

Sync points: none per step beyond DDP's gradient all-reduce. Per pass over shuffled data,
one broadcast of rank 0's seed; per epoch, one all-reduce of every metric state (and of the
stop flag) and one broadcast of the module's buffers; per predict, one all-gather.

Every ``tc.metrics`` state is a sum over samples (totals, counts, confusion counts, AUC
buckets, R2's sums), so summing the states gives the global metric exactly. A custom
``Metric`` whose state is not a sum (a max, a last value) would be summed too: give it
additive state. A torchmetrics metric (``ForeignMetric``) is synced by torchmetrics itself,
once per epoch.
"""

from __future__ import annotations

import atexit
import datetime
import inspect
import os
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from torchcompile import distribution as distribution_module
from torchcompile.core.process import is_distributed
from torchcompile.core.tree import join_structures
from torchcompile.engine import sharding
from torchcompile.engine.data_sharding import (  # noqa: F401 - which samples each process takes, re-exported
    PassSampler,
    Sharding,
    check_batch_size,
    comm_device,
    epoch_order,
    reshard_loader,
    shard_batch,
    sharding_for,
    shared_seed,
)
from torchcompile.engine.sharding import check_compile, shard  # noqa: F401 - sharded data parallel, re-exported

EXIT_BARRIER_SECONDS = 30  # how long a process waits at exit for its peers before tearing down

# Buffers are synced once per epoch (broadcast_buffers), not at every forward; newer torch
# renamed the argument.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


# ---------------------------------------------------------------- process group and device
def setup(device: torch.device) -> torch.device:
    """Join the process group when there is one to join, and return this process's device.

    A group the user initialised is used as is. Without one, torchrun's environment
    (``WORLD_SIZE`` > 1) starts it: nccl when the device is CUDA, else gloo. A CUDA device
    without an index becomes ``cuda:LOCAL_RANK``; one process, without torchrun, is untouched.
    """
    initialised = dist.is_available() and dist.is_initialized()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if not initialised and world_size <= 1:
        return device
    if not initialised:
        _init_process_group(device, world_size)
    if device.type == "cuda" and device.index is None:
        local_rank = os.environ.get("LOCAL_RANK")
        index = int(local_rank) if local_rank is not None else dist.get_rank() % torch.cuda.device_count()
        device = torch.device("cuda", index)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _init_process_group(device: torch.device, world_size: int) -> None:
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing or not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world_size} asks for {world_size} processes, but "
            + (
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
                if missing
                else "this build of torch has no torch.distributed"
            )
            + ". Launch the script with `torchrun --nproc_per_node=N script.py`, which sets "
            "them, or call torch.distributed.init_process_group() before creating the model. "
            f"Received: WORLD_SIZE={world_size}"
        )
    # env:// reads MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE.
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if not dist.is_initialized():
        return
    # Every process reaches teardown before any closes its connections: without this, gloo on
    # one process can abort ("terminate called without an active exception") when its peer
    # destroys the group first. Bounded, so a peer that died does not hang the exit.
    try:
        dist.barrier(async_op=True).wait(timeout=datetime.timedelta(seconds=EXIT_BARRIER_SECONDS))
    except Exception:  # noqa: BLE001 - a dead peer: tear down anyway
        pass
    dist.destroy_process_group()


def wrap(module: torch.nn.Module, device: torch.device, distribution: Any = None) -> DistributedDataParallel | None:
    """The module in ``DistributedDataParallel`` under several processes, else None.

    Constructing it copies rank 0's parameters and buffers to every process. Buffers
    (BatchNorm statistics) are not broadcast each step (``broadcast_buffers=False``);
    ``end_epoch`` broadcasts rank 0's once per epoch, before validation and checkpoints.
    A sharded module (``tc.distribution.FSDP``, sharded by ``shard``) is its own wrapper: None.
    """
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return None
    if sharding.wants_sharding(distribution) or sharding.is_sharded(module):
        if not sharding.is_sharded(module):  # shard() runs when the model is built and before compile's optimizer
            raise RuntimeError("distribution=FSDP: the module was not sharded before compile built the optimizer")
        return None
    choice = distribution_module.get(distribution)
    find_unused = bool(getattr(choice, "find_unused_parameters", False))
    device_ids = [device.index] if device.type == "cuda" else None
    return _DataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused, **_NO_FORWARD_BUFFER_SYNC)


class _DataParallel(DistributedDataParallel):
    """DDP whose error for parameters that got no gradient names the option that allows them."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().forward(*args, **kwargs)
        except RuntimeError as e:
            if "Expected to have finished reduction" not in str(e):
                raise
            raise RuntimeError(
                "Some parameters got no gradient in the last step (a branch of the forward that this "
                "batch skipped, or an output that does not reach the loss), so DDP could not average "
                "their gradients. If the skip is intended, build the model with tc.Model(module, "
                "distribution=tc.distribution.DataParallel(find_unused_parameters=True)) (one walk of "
                "the graph per step); else freeze them with requires_grad_(False) before compile. "
                "TORCH_DISTRIBUTED_DEBUG=INFO names them. Received: find_unused_parameters=False"
            ) from e


# ---------------------------------------------------------------- end of epoch: metrics, buffers, stop
def end_epoch(module: torch.nn.Module, metrics: list, stop_training: bool) -> bool:
    """After a training epoch: rank 0's buffers to every process, metrics summed, stop if any stops.

    Returns the agreed ``stop_training``. A stop asked for mid-epoch on one process waits for
    the epoch's end (loop.py), where every process learns of it here; stopping at once would
    leave the others waiting in DDP's next all-reduce.
    """
    if not is_distributed():
        return stop_training
    broadcast_buffers(module)
    return all_reduce_metrics(metrics, stop_training)


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every process: one broadcast per dtype."""
    buffers = [b for b in module.buffers() if b.numel()]
    for dtype in sorted({b.dtype for b in buffers}, key=str):
        group = [b for b in buffers if b.dtype == dtype]
        flat = torch.cat([b.detach().reshape(-1) for b in group]).to(comm_device())
        dist.broadcast(flat, src=0)
        _unflatten(flat, group)


def all_reduce_metrics(metrics: list, stop_training: bool = False) -> bool:
    """Sum every metric state across processes, in place; returns whether any process stops.

    One all-reduce for all ``tc.metrics`` states (float64, so counts stay exact) and the
    stop flag; torchmetrics metrics sync themselves (``_sync_foreign``).
    """
    if not is_distributed():
        return stop_training
    states = [v for m in metrics for v in getattr(m, "variables", [])]
    flag = torch.tensor([float(stop_training)], dtype=torch.float64, device=comm_device())
    flat = all_reduce_sum(states, extra=flag)
    for metric in metrics:
        _sync_foreign(metric)
    return bool(flat[-1] > 0)  # host read, once per epoch


def all_reduce_sum(tensors: list[torch.Tensor], extra: torch.Tensor | None = None) -> torch.Tensor:
    """Sum ``tensors`` across processes in place, in one all-reduce; returns the flat buffer."""
    parts = [t.detach().reshape(-1).to(comm_device(), torch.float64) for t in tensors]
    parts += [extra] if extra is not None else []
    flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64, device=comm_device())
    dist.all_reduce(flat)
    _unflatten(flat, tensors)
    return flat


def _unflatten(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()


def _sync_foreign(metric: Any) -> None:
    """A torchmetrics metric: gather its states from every process (torchmetrics' own sync).

    Its compute() would sync on every call, and only rank 0 reads batch logs (the progress
    bar), which would leave it waiting for the others; so ``disable_foreign_sync`` turns
    that off and the sync happens here, once per epoch, on every process.
    """
    obj = getattr(metric, "obj", None)
    if callable(getattr(obj, "sync", None)) and hasattr(obj, "_computed"):
        if not getattr(obj, "_is_synced", False):
            obj.sync(should_sync=True, distributed_available=is_distributed)
        obj._computed = None  # a value cached from a local read mid-epoch


def disable_foreign_sync(metrics: list) -> None:
    """Stop torchmetrics metrics from syncing on every compute() (``_sync_foreign`` syncs them)."""
    if not is_distributed():
        return
    for metric in metrics:
        obj = getattr(metric, "obj", None)
        if hasattr(obj, "_to_sync"):
            obj._to_sync = False


# ---------------------------------------------------------------- predict
def gather_predictions(local: Any, sharding: Sharding) -> Any:
    """Every process's predictions, in sample order, on every process (one all-gather)."""
    indices = torch.cat(sharding.indices).numpy() if sharding.indices else np.zeros(0, dtype=np.int64)
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (indices, local))
    return assemble(parts)


def assemble(parts: list[tuple[np.ndarray, Any]]) -> Any:
    """``[(sample indices, outputs), ...]`` per process → the outputs in sample order."""
    order = np.argsort(np.concatenate([indices for indices, _ in parts]), kind="stable")
    return _merge([outputs for _, outputs in parts], order)


def _merge(parts: list, order: np.ndarray) -> Any:
    def join(leaves: list) -> Any:
        joined = np.concatenate(leaves)
        return joined[order] if len(joined) == len(order) else joined  # not one row per sample: as gathered

    return join_structures(parts, join)
