# SPDX-License-Identifier: Apache-2.0
"""Which samples each process takes under torchrun: Keras' global ``batch_size`` split across processes.

Owns: the check that ``batch_size`` splits evenly, ``Sharding`` (arrays and map-style Datasets:
every ``world_size``-th sample of each global batch, padded in training so every process runs
the same steps; in evaluation a last batch smaller than the processes joins the one before, so
every process runs the same steps there too, which sharded models need: their forward is a
collective), the order of a pass from rank 0's seed, and a training DataLoader with a plain
sampler resharded (``reshard_loader``: a ``DistributedSampler`` put in). Not: the process
group, DDP and epoch-end reductions (distributed.py), batching (data_adapters.py).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler

from torchcompile.core.process import is_distributed
from torchcompile.engine.data_adapters import DEFAULT_BATCH_SIZE, accepts_batch_size
from torchcompile.engine.device import CPU


def comm_device() -> torch.device:
    """Where tensors for collectives live: the current CUDA device under nccl, else the CPU."""
    if "nccl" in str(dist.get_backend()):
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


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

    Arrays and map-style Datasets are sharded here. A DataLoader or generator yields this
    process's batches itself (``reshard_loader`` gives a training DataLoader a DistributedSampler).
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
            "process reads all of its batches (fit reshards a training DataLoader only when its "
            "sampler is the plain sequential or random one). Pass the Dataset itself (fit shards it "
            "and splits batch_size), or build the DataLoader with sampler=DistributedSampler(dataset).",
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
        seed = seed.to(comm_device())
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
        for start, size in self.bounds(num_samples, batch_size):
            index = shard_batch(on_device, start, size, self.rank, self.world_size, self.training)
            if not self.training:
                self.indices.append(shard_batch(order, start, size, self.rank, self.world_size, False))
            yield index

    def bounds(self, num_samples: int, batch_size: int) -> list[tuple[int, int]]:
        """``(start, size)`` of each global batch. Evaluating, a last batch smaller than the number of
        processes joins the one before, so that no process's share is empty and all run the same steps."""
        bounds = [(start, min(batch_size, num_samples - start)) for start in range(0, num_samples, batch_size)]
        if not self.training and len(bounds) > 1 and bounds[-1][1] < self.world_size:
            (start, size), (_, rest) = bounds[-2], bounds.pop()
            bounds[-1] = (start, size + rest)
        return bounds

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
        return len(self.sharding.bounds(self.num_samples, self.batch_size))


# ---------------------------------------------------------------- a user's DataLoader
def reshard_loader(x: Any, training: bool) -> Any:
    """Under several processes, a training DataLoader with a plain sampler, rebuilt to read this
    process's share: the same dataset, batch size (per process) and options, with a ``PassSampler``
    (a DistributedSampler) in place of its sequential or random sampler. Anything else: ``x``."""
    if not (training and is_distributed() and isinstance(x, DataLoader)) or _has_distributed_sampler(x):
        return x
    plain = isinstance(x.sampler, (SequentialSampler, RandomSampler)) and type(x.batch_sampler) is BatchSampler
    if not plain or x.batch_size is None:
        return x  # a sampler of its own: sharding_for warns
    options = ("num_workers", "collate_fn", "pin_memory", "drop_last", "timeout", "worker_init_fn")
    options += ("multiprocessing_context", "generator", "persistent_workers", "pin_memory_device")
    kwargs = {name: getattr(x, name) for name in options if hasattr(x, name)}
    if x.num_workers:
        kwargs["prefetch_factor"] = x.prefetch_factor
    sampler = PassSampler(x.dataset, shuffle=isinstance(x.sampler, RandomSampler))
    return DataLoader(x.dataset, batch_size=x.batch_size, sampler=sampler, **kwargs)


class PassSampler(DistributedSampler):
    """``DistributedSampler`` (same padding, same share per rank) whose order is drawn anew each pass
    from rank 0's torch RNG (``epoch_order``), as fit's own sharding: no ``set_epoch`` needed, and
    BackupAndRestore replays a pass by restoring the RNG."""

    def __iter__(self) -> Iterator[int]:
        order = epoch_order(len(self.dataset), self.shuffle).tolist()
        if self.total_size > len(order):
            order += (order * math.ceil(self.total_size / len(order)))[: self.total_size - len(order)]
        return iter(order[self.rank : self.total_size : self.num_replicas])
