# SPDX-License-Identifier: Apache-2.0
"""Where does an epoch of ``fit`` spend its time? A cProfile of epochs, grouped by owner.

Runs the fast loop and tc ``fit(verbose=0)`` (or ``--verbose 1``) on a workload of
``runners.py`` under cProfile (three epochs each, twice, interleaved), then sums each function's own time
by who owns it:
torch's kernels (C++ calls), torch's Python (``torch.optim``, ``torch.autograd``,
``nn.Module``), each ``torchcompile`` module, and the rest. The difference between the two
columns is what the framework adds per step. cProfile inflates Python-heavy code, so read
the torchcompile rows as an upper bound.

    python benchmarks/profile_epoch.py [--workload mlp64] [--verbose 0] [--top 12]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runners  # noqa: E402

REPEATS = 3  # profiled epochs per runner; the table gives the per-step average


def owner(filename: str, name: str) -> str:
    if filename == "~":  # a C function called from Python: torch's kernels and builtins
        return "torch kernels (C++)" if "torch" in name or "method '" in name else "Python builtins"
    path = filename.replace(os.sep, "/")
    if "/torchcompile/" in path:
        return "tc " + path.split("/torchcompile/")[-1]
    for part, label in (
        ("/torch/optim/", "torch.optim (Python)"),
        ("/torch/autograd/", "torch.autograd (Python)"),
        ("/torch/nn/", "torch.nn (Python)"),
        ("/torch/", "torch, other Python"),
        ("/tqdm/", "tqdm"),
    ):
        if part in path:
            return label
    return "benchmark and other"


def profile(runner: str, workload: str, verbose: int) -> tuple[dict[str, float], int]:
    """Own time per owner (seconds per step) for one timed epoch of ``runner``."""
    stats: dict[str, float] = collections.Counter()
    profiler = cProfile.Profile()

    def timed(device, fn):
        for _ in range(REPEATS):
            profiler.enable()
            fn()
            profiler.disable()
        return 0.0, 0.0

    runners.timed = timed
    device = torch.device("cpu")
    if runner == "fast":
        runners.fast_loop(workload, device, 1)
    else:
        runners.tc_fit(workload, device, 1, verbose=verbose)
    w = runners.WORKLOADS[workload]
    steps = -(-w.samples // w.batch_size) * REPEATS
    for (filename, _, name), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():
        stats[owner(filename, name)] += own / steps
    return stats, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mlp64", choices=sorted(runners.WORKLOADS))
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [profile(name, args.workload, args.verbose) for name in ("fast", "tc", "fast", "tc")]
    steps = runs[0][1]
    # Twice each, interleaved; the smaller of the two runs per owner is the less disturbed one.
    fast, tc = (
        {k: min(a[0].get(k, 0), b[0].get(k, 0)) for k in set(a[0]) | set(b[0])}
        for a, b in ((runs[0], runs[2]), (runs[1], runs[3]))
    )
    rows = sorted(set(fast) | set(tc), key=lambda k: -(tc.get(k, 0) + fast.get(k, 0)))[: args.top]
    print(
        f"{runners.WORKLOADS[args.workload].name}, {steps} steps under cProfile, CPU, 1 thread; µs of own time per step"
    )
    print("| owner | fast loop | tc fit | difference |\n|---|---:|---:|---:|")
    for key in rows:
        a, b = fast.get(key, 0) * 1e6, tc.get(key, 0) * 1e6
        print(f"| {key} | {a:.1f} | {b:.1f} | {b - a:+.1f} |")
    total_a, total_b = sum(fast.values()) * 1e6, sum(tc.values()) * 1e6
    print(f"| **total** | {total_a:.1f} | {total_b:.1f} | {total_b - total_a:+.1f} |")


if __name__ == "__main__":
    main()
