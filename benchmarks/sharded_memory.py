# SPDX-License-Identifier: Apache-2.0
"""Bytes of parameters, gradients and optimizer state per process: sharded (FSDP) vs DDP.

    torchrun --nproc_per_node=2 benchmarks/sharded_memory.py fsdp
    torchrun --nproc_per_node=2 benchmarks/sharded_memory.py ddp

A ~50M-parameter transformer-shaped MLP (6 blocks of width 1024) trains 3 steps with Adam on
the CPU (gloo); each process then reports the bytes it holds (a DTensor counts its local shard),
the peak of those bytes across the steps as ``torch.profiler`` can't on the CPU (so: after each
step, when gradients and the state are all alive), and its peak resident memory (ru_maxrss, which
also counts the whole model each process builds before sharding it, and torch itself).
"""

from __future__ import annotations

import json
import resource
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

import torchcompile as tc

WIDTH, BLOCKS = 1024, 6


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)

    def forward(self, x):
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*(Block(WIDTH) for _ in range(BLOCKS)))
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x):
        return self.head(self.blocks(x))


def local_bytes(tensors) -> int:
    total = 0
    for t in tensors:
        t = t.to_local() if hasattr(t, "to_local") else t
        total += t.numel() * t.element_size()
    return total


class Measure(tc.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.peak = {"params": 0, "grads": 0, "optimizer": 0}

    def on_train_batch_end(self, batch, logs=None):
        params = list(self.model.module.parameters())
        state = [v for s in self.model.optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
        now = {
            "params": local_bytes(params),
            "grads": local_bytes([p.grad for p in params if p.grad is not None]),
            "optimizer": local_bytes(state),
        }
        self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}


def main(mode: str) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    module = Net()
    model = tc.Model(module, device="cpu", distribution="fsdp" if mode == "fsdp" else None)
    from torchcompile.engine import distributed  # a no-op once tc.Model shards when built

    distributed.shard(model.module, model.device, model.distribution)
    model.compile(optimizer="adam", loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, WIDTH)).astype("float32"), rng.integers(0, 10, size=96)
    measure = Measure()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[measure], shuffle=False)
    total = sum(p.numel() for p in model.module.parameters())
    report = {
        "mode": mode,
        "rank": dist.get_rank(),
        "parameters": total,
        **{f"{k}_MB": round(v / 2**20, 1) for k, v in measure.peak.items()},
        "sum_MB": round(sum(measure.peak.values()) / 2**20, 1),
        "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fsdp")
