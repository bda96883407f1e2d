# SPDX-License-Identifier: Apache-2.0
"""How much does `fit` add over a careful hand-written loop? Same model, data, steps, one run.

The hand-written loop is the fastest honest PyTorch loop: data on the device once, a
device permutation each epoch, slices per step, `zero_grad(set_to_none=True)`, loss and
accuracy accumulated on the device and read once per epoch. `tc` runs
`fit(verbose=0)` with loss="sparse_categorical_crossentropy" (from_logits) and
metrics=["accuracy"]. Runs alternate and the median of each is reported.

    python benchmarks/fit_overhead.py [--repeats 5] [--samples 16384] [--device auto]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import torchcompile as tc


def make_module() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def hand_written(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, device: torch.device) -> float:
    module = make_module().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7)
    start = time.perf_counter()
    xs, ys = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    n = xs.shape[0]
    for _ in range(epochs):
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        order = torch.randperm(n, device=device)
        module.train()
        for begin in range(0, n, batch_size):
            index = order[begin:begin + batch_size]
            xb, yb = xs[index], ys[index]
            logits = module(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.detach() * yb.shape[0]
            correct += (logits.detach().argmax(-1) == yb).sum()
        epoch_logs = [(total_loss / n).item(), (correct / n).item()]  # one sync per epoch
    sync(device)
    del epoch_logs
    return time.perf_counter() - start


def torchcompile_fit(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, device: torch.device,
                     verbose: int = 0) -> float:
    model = tc.Model(make_module(), device=device)
    model.compile(optimizer=tc.optimizers.Adam(learning_rate=1e-3),
                  loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose)
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = tc.Model(torch.nn.Identity(), device=args.device).device
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 784)).astype("float32")
    y = rng.integers(0, 10, size=args.samples)
    runs = {"hand-written loop": hand_written, "tc fit(verbose=0)": torchcompile_fit}
    for run in runs.values():  # warm-up: allocator, kernels, lazy imports
        run(x[:2048], y[:2048], args.batch_size, 1, device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            torch.manual_seed(0)
            times[name].append(run(x, y, args.batch_size, args.epochs, device))
    base = statistics.median(times["hand-written loop"])
    steps = args.epochs * -(-args.samples // args.batch_size)
    print(f"784-128-10 MLP, batch {args.batch_size}, {steps} steps, device {device}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<22} {median:7.3f} s  {median / steps * 1e6:8.1f} us/step  {median / base:5.3f}x")


if __name__ == "__main__":
    main()
