# SPDX-License-Identifier: Apache-2.0
"""What ``gradient_accumulation_steps`` costs (issue 17): time per train step, and peak memory.

**Time.** The 784-1024-1024-10 MLP at batch 64, Adam with ``clipnorm`` and ``weight_decay``
(so the optimizer's step and its hooks do real work), one torch thread, CPU time. Two models
built once, then ``train_step`` timed alternating, step by step: without accumulation every
step is forward + backward + update; with ``gradient_accumulation_steps=4`` three steps in four
only add their gradient to ``.grad`` (no optimizer work) and the fourth also divides by 4 and
updates. It prints the median µs of each kind of step, and ``fit``'s µs per step for both.

**Memory.** Each configuration in a fresh process (its high-water mark its own, Linux VmHWM):
two 4096x4096 layers (134 MB of float32 weights), Adam, the growth of the peak resident set over
a 2-epoch ``fit`` started from a freshly compiled model (gradients, Adam's two moments and the
activations appear during it). The running sum lives in ``.grad``: no buffer is added. What
accumulation does add is transient: while ``.grad`` holds a sum, autograd's new gradient for
a parameter exists next to it until it is added in place (without accumulation ``.grad`` is
None at that point and the new gradient becomes it), so the peak grows by about the largest
parameter's size (64 MB here), not by a second copy of every gradient.

    python benchmarks/accumulation.py              # both, about a minute
    python benchmarks/accumulation.py --timing-only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch
from torch import nn

import torchcompile as tc

STEPS = 4


def _model(steps: int | None) -> tc.Model:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    model = tc.Model(module, device="cpu")
    model.compile(
        tc.optimizers.Adam(1e-3, clipnorm=1.0, weight_decay=1e-4),
        tc.losses.SparseCategoricalCrossentropy(from_logits=True),
        gradient_accumulation_steps=steps,
    )
    return model


def timing(rounds: int) -> dict[str, float]:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(64, 784)).astype("float32"))
    y = torch.from_numpy(rng.integers(0, 10, size=64))
    plain, accumulating = _model(None), _model(STEPS)
    for model in (plain, accumulating):
        for _ in range(2 * STEPS):  # the first batch's checks, lazy state, allocator warm-up
            model.train_step((x, y, None))
    times: dict[str, list[float]] = {"normal": [], "accumulate": [], "update": []}
    for _ in range(rounds):
        for model in (plain, accumulating):
            for _ in range(STEPS):
                kind = "normal"
                if model is accumulating:
                    kind = "update" if model._compiled.accumulation.update_due else "accumulate"
                start = time.process_time()
                model.train_step((x, y, None))
                times[kind].append(time.process_time() - start)
    result = {f"{k}_us": 1e6 * statistics.median(v) for k, v in times.items()}
    result["cycle_mean_us"] = (result["accumulate_us"] * (STEPS - 1) + result["update_us"]) / STEPS
    xs = np.repeat(x.numpy(), 16, axis=0)
    ys = np.repeat(y.numpy(), 16, axis=0)
    for name, model in (("fit_normal_us", plain), ("fit_accumulating_us", accumulating)):
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            model.fit(xs, ys, batch_size=64, epochs=1, verbose=0, shuffle=False)
            best = min(best, time.process_time() - start)
        result[name] = 1e6 * best / (len(xs) // 64)
    return result


MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from torch import nn
    import torchcompile as tc

    def peak():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    steps = int(sys.argv[1]) or None
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4096)).astype("float32")
    y = rng.normal(size=(256, 4096)).astype("float32")
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 4096))
    model = tc.Model(module, device="cpu")
    model.compile(tc.optimizers.Adam(1e-4), "mse", gradient_accumulation_steps=steps)
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    reset_peak()
    before = peak()
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    print(json.dumps({"weights": weights, "growth": peak() - before}))
""")


def memory() -> dict[str, float]:
    out = {}
    for steps in (0, STEPS):
        run = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(steps)], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(run.stderr)
        stats = json.loads(run.stdout.strip().splitlines()[-1])
        out["weights_mb"] = stats["weights"] / 2**20
        out[f"growth_mb_n{steps or 1}"] = stats["growth"] / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    t = timing(args.rounds)
    n = f"gradient_accumulation_steps={STEPS}"
    print("train_step, MLP 784-1024-1024-10, batch 64, Adam(clipnorm, weight_decay), one thread:")
    print(f"  CPU µs, median of {args.rounds} rounds (x: against a step without accumulation)")
    print(f"  no accumulation, every step   {t['normal_us']:8.0f}")
    for kind, label in (("accumulate", "accumulating"), ("update", "updating"), ("cycle_mean", "cycle mean")):
        print(f"  {n}, {label:<13} {t[kind + '_us']:8.0f}  ({t[kind + '_us'] / t['normal_us']:.2f}x)")
    print(f"fit, µs per step: {t['fit_normal_us']:.0f} without, {t['fit_accumulating_us']:.0f} with {n}")
    if args.timing_only:
        return
    m = memory()
    print(f"peak RSS growth over a 2-epoch fit from a fresh compile ({m['weights_mb']:.0f} MB of weights, Adam):")
    print(f"  no accumulation {m['growth_mb_n1']:.0f} MB; {n} {m[f'growth_mb_n{STEPS}']:.0f} MB")


if __name__ == "__main__":
    main()
