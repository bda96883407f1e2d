# SPDX-License-Identifier: Apache-2.0
"""Data-parallel fit / evaluate / predict across processes (torchrun, DistributedDataParallel).

Owns: joining the process group (one the user initialised is used as is; else torchrun's
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``, with nccl on CUDA
and gloo on the CPU), each process's device (``cuda:LOCAL_RANK``), wrapping the module in
``DistributedDataParallel`` (kept apart from ``model.module``), Keras' meaning of
``batch_size`` (the global batch, split evenly across processes), which samples each process
takes (``Sharding``), summing metric states across processes at the end of an epoch,
and gathering predictions in order.
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
import math
import os
import warnings
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from torchcompile.core.process import is_distributed
from torchcompile.core.tree import join_structures
from torchcompile.engine.data_adapters import DEFAULT_BATCH_SIZE, accepts_batch_size

EXIT_BARRIER_SECONDS = 30  # how long a process waits at exit for its peers before tearing down

# Buffers are synced once per epoch (broadcast_buffers), not at every forward; newer torch
# renamed the argument.
_NO_FORWARD_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)

CPU = torch.device("cpu")


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


def _comm_device() -> torch.device:
    """Where tensors for collectives live: the current CUDA device under nccl, else the CPU."""
    if "nccl" in str(dist.get_backend()):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def wrap(module: torch.nn.Module, device: torch.device, distribution: Any = None) -> DistributedDataParallel | None:
    """The module in ``DistributedDataParallel`` under several processes, else None.

    Constructing it copies rank 0's parameters and buffers to every process. Buffers
    (BatchNorm statistics) are not broadcast each step (``broadcast_buffers=False``);
    ``end_epoch`` broadcasts rank 0's once per epoch, before validation and checkpoints.
    """
    if not is_distributed() or not any(p.requires_grad for p in module.parameters()):
        return None
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, **_NO_FORWARD_BUFFER_SYNC)


# ---------------------------------------------------------------- which samples each process takes
def check_batch_size(batch_size: Any, world_size: int, default: bool = False) -> None:
    """Keras' ``batch_size`` is the global batch: it must split evenly across the processes."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        return  # data_adapters refuses it with its own message
    if batch_size % world_size:
        lower = max(world_size, batch_size - batch_size % world_size)
        raise ValueError(
            f"`batch_size` is the global batch (Keras' meaning), split evenly across the "
            f"{world_size} processes, so it must be a multiple of {world_size}; pass "
            f"batch_size={lower} or {lower + world_size}. Received: batch_size={batch_size}"
            + (" (the default)" if default else "")
            + f", world_size={world_size}"
        )


def sharding_for(x: Any, batch_size: int | None, steps: int | None, training: bool) -> Sharding | None:
    """This process's ``Sharding`` for data ``x`` under several processes; None in one process.

    Arrays and map-style Datasets are sharded here. A DataLoader or generator is used as
    is: it yields this process's batches itself (a DataLoader should use a DistributedSampler).
    """
    if not is_distributed():
        return None
    world_size = dist.get_world_size()
    if accepts_batch_size(x):
        default = batch_size is None and steps is None
        check_batch_size(DEFAULT_BATCH_SIZE if default else batch_size, world_size, default=default)
    elif isinstance(x, DataLoader) and not _has_distributed_sampler(x):
        warnings.warn(
            f"Under {world_size} processes this DataLoader has no DistributedSampler, so every "
            "process reads all of its batches. Pass the Dataset itself (fit shards it and splits "
            "batch_size), or build the DataLoader with sampler=DistributedSampler(dataset).",
            stacklevel=4,
        )
    return Sharding(dist.get_rank(), world_size, training)


def _has_distributed_sampler(loader: DataLoader) -> bool:
    batch_sampler = getattr(loader, "batch_sampler", None)
    samplers = (getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None), batch_sampler)
    return any(isinstance(s, (DistributedSampler, _BatchSampler)) for s in samplers)


def shard_batch(
    order: torch.Tensor, start: int, batch_size: int, rank: int, world_size: int, pad: bool
) -> torch.Tensor:
    """Process ``rank``'s share of the global batch ``order[start:start + batch_size]``.

    Every ``world_size``-th sample from ``rank`` on. With ``pad``, a batch that does not
    split evenly is first topped up with the first samples of ``order``, as
    ``DistributedSampler`` pads an epoch, so every process gets the same number of samples.
    """
    batch = order[start : start + batch_size]
    short = -len(batch) % world_size
    if pad and short:
        batch = torch.cat([batch, order.repeat(math.ceil(short / len(order)))[:short]])
    return batch[rank::world_size]


def epoch_order(num_samples: int, shuffle: bool) -> torch.Tensor:
    """One pass's order of the samples, the same in every process (CPU, int64)."""
    if not shuffle:
        return torch.arange(num_samples)
    generator = torch.Generator().manual_seed(shared_seed())
    return torch.randperm(num_samples, generator=generator)


def shared_seed() -> int:
    """A seed drawn from this process's torch RNG; under several processes, rank 0's.

    Drawing from the RNG (not from a counter) keeps ``torch.manual_seed`` in charge of the
    order, and lets BackupAndRestore replay a pass by restoring the RNG state.
    """
    seed = torch.randint(0, 2**62, (1,))
    if is_distributed():
        seed = seed.to(_comm_device())
        dist.broadcast(seed, src=0)
    return int(seed)  # host read, once per pass


class Sharding:
    """Which samples of each pass this process takes, for arrays and map-style Datasets.

    A pass takes one order of the samples, the same in every process (a permutation from
    rank 0's seed when shuffling, else ``0..n-1``), cuts it into global batches of
    ``batch_size``, and gives process ``rank`` the samples ``batch[rank::world_size]`` of each
    (``shard_batch``). Over an epoch that is exactly what
    ``DistributedSampler(num_replicas=world_size, rank=rank, drop_last=False)`` gives a rank,
    batched by ``batch_size // world_size``, and the processes' k-th batches together are the
    k-th global batch, so averaging their gradients (DDP) gives the global batch's gradient.

    Training pads a last batch that does not split evenly (DistributedSampler's padding), so
    every process runs the same number of steps. Evaluation and prediction do not pad: every
    sample counts once; a process whose share of a batch is empty skips it (their steps run
    no collective). ``indices`` holds the samples this process took in its last such pass,
    for ``gather_predictions``.

    Args:
        rank: this process's rank.
        world_size: the number of processes.
        training: pad (training) or cover every sample exactly once (evaluate, predict).
    """

    def __init__(self, rank: int, world_size: int, training: bool):
        self.rank, self.world_size, self.training = rank, world_size, training
        self.indices: list[torch.Tensor] = []

    def batches(
        self, num_samples: int, batch_size: int, shuffle: bool, device: torch.device = CPU
    ) -> Iterator[torch.Tensor]:
        """This process's index tensor (on ``device``) for each global batch of one pass."""
        check_batch_size(batch_size, self.world_size)  # also one derived from `steps`
        if not self.training and num_samples < self.world_size:
            raise ValueError(
                f"Evaluating or predicting on {num_samples} samples under {self.world_size} "
                "processes leaves a process without data; pass at least one sample per process, "
                f"or run it in one process. Received: {num_samples} samples, "
                f"world_size={self.world_size}"
            )
        order = epoch_order(num_samples, shuffle)
        on_device = order.to(device)  # one copy per pass; the batches are views of it
        self.indices = []
        for start in range(0, num_samples, batch_size):
            index = shard_batch(on_device, start, batch_size, self.rank, self.world_size, self.training)
            if index.numel() == 0:
                continue
            if not self.training:
                self.indices.append(shard_batch(order, start, batch_size, self.rank, self.world_size, False))
            yield index

    def batch_sampler(self, num_samples: int, batch_size: int, shuffle: bool) -> _BatchSampler:
        """A DataLoader ``batch_sampler`` yielding this process's index lists."""
        return _BatchSampler(self, num_samples, batch_size, shuffle)


class _BatchSampler(Sampler):
    """``Sharding.batches`` as a DataLoader batch sampler (lists of sample indices)."""

    def __init__(self, sharding: Sharding, num_samples: int, batch_size: int, shuffle: bool):
        self.sharding, self.num_samples, self.batch_size, self.shuffle = sharding, num_samples, batch_size, shuffle

    def __iter__(self) -> Iterator[list[int]]:
        for index in self.sharding.batches(self.num_samples, self.batch_size, self.shuffle):
            yield index.tolist()

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)


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
        flat = torch.cat([b.detach().reshape(-1) for b in group]).to(_comm_device())
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
    flag = torch.tensor([float(stop_training)], dtype=torch.float64, device=_comm_device())
    flat = all_reduce_sum(states, extra=flag)
    for metric in metrics:
        _sync_foreign(metric)
    return bool(flat[-1] > 0)  # host read, once per epoch


def all_reduce_sum(tensors: list[torch.Tensor], extra: torch.Tensor | None = None) -> torch.Tensor:
    """Sum ``tensors`` across processes in place, in one all-reduce; returns the flat buffer."""
    parts = [t.detach().reshape(-1).to(_comm_device(), torch.float64) for t in tensors]
    parts += [extra] if extra is not None else []
    flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64, device=_comm_device())
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
