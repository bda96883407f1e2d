# SPDX-License-Identifier: Apache-2.0
"""The same training from three data sources, timed side by side.

A 784-128-10 MLP trained for one epoch on synthetic MNIST-shaped data:

1. ``tc`` fit on NumPy arrays (moved to the device once, sliced by a per-epoch permutation);
2. ``tc`` fit on a ``DataLoader`` over a ``TensorDataset`` (shuffle=True);
3. a hand-written loop over the same kind of DataLoader (what the DataLoader itself costs);
4. a hand-written loop over device tensors (randperm, index, step) — the floor.

Each source runs once to warm up, then ``--repeats`` timed epochs from the same initial
weights, round-robin over the sources; the table gives medians of wall and CPU time and
their ratios to the hand-written loop (ratio 1.10x = 10% slower). With one thread, CPU
time is the steadier number on a shared machine.

Usage: ``python benchmarks/data_sources.py [--samples 32768] [--batch-size 128] [--repeats 5]
[--device auto] [--threads N]``. Runs on a CPU in well under two minutes.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchcompile as tc


def make_module() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_arrays(module: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device) -> Callable:
    model = tc.Model(module, device=device)
    model.compile(optimizer=torch.optim.Adam(module.parameters(), lr=1e-3), loss=nn.CrossEntropyLoss())
    return lambda: model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)


def fit_dataloader(module: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device) -> Callable:
    model = tc.Model(module, device=device)
    model.compile(optimizer=torch.optim.Adam(module.parameters(), lr=1e-3), loss=nn.CrossEntropyLoss())
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch_size,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )
    return lambda: model.fit(loader, epochs=1, verbose=0)


def hand_loop(module: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device) -> Callable:
    module = module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x_dev, y_dev = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def epoch() -> None:
        module.train()
        order = torch.randperm(len(x_dev), device=device)
        for start in range(0, len(x_dev), batch_size):
            index = order[start : start + batch_size]
            loss = loss_fn(module(x_dev[index]), y_dev[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


def hand_loop_dataloader(
    module: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device
) -> Callable:
    module = module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch_size,
        shuffle=True,
        pin_memory=device.type == "cuda",
    )

    def epoch() -> None:
        module.train()
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            loss = loss_fn(module(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return epoch


SOURCES = {
    "tc fit, NumPy arrays": fit_arrays,
    "tc fit, DataLoader(TensorDataset)": fit_dataloader,
    "hand-written loop, same DataLoader": hand_loop_dataloader,
    "hand-written loop, device tensors": hand_loop,
}


def time_sources(
    initial: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device, repeats: int
) -> dict[str, tuple[list[float], list[float]]]:
    """(wall seconds, CPU seconds) per epoch for every source, from the same initial weights.

    Each source runs once to warm up (lazy imports, allocators); then the timed repeats go
    round-robin over the sources, so a change in machine load hits all of them alike.
    """
    for build in SOURCES.values():
        build(copy.deepcopy(initial), x, y, batch_size, device)()
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in SOURCES}
    for _ in range(repeats):
        for name, build in SOURCES.items():
            run = build(copy.deepcopy(initial), x, y, batch_size, device)
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            sync(device)
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(time.process_time() - cpu)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = tc.Model(nn.Identity(), device=args.device).device
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    torch.manual_seed(0)
    initial = make_module()
    times = time_sources(initial, x, y, args.batch_size, device, args.repeats)
    wall = {name: statistics.median(w) for name, (w, _) in times.items()}
    cpu = {name: statistics.median(c) for name, (_, c) in times.items()}
    floor = "hand-written loop, device tensors"
    steps = -(-args.samples // args.batch_size)
    print(
        f"{args.samples} samples x 784, batch {args.batch_size} ({steps} steps), device {device}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {args.repeats}\n"
    )
    print("| source | wall s / epoch | steps / s | wall ratio | CPU s / epoch | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in SOURCES:
        print(
            f"| {name} | {wall[name]:.3f} | {steps / wall[name]:,.0f} | {wall[name] / wall[floor]:.2f}x "
            f"| {cpu[name]:.3f} | {cpu[name] / cpu[floor]:.2f}x |"
        )


if __name__ == "__main__":
    main()
