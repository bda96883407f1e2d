# SPDX-License-Identifier: Apache-2.0
"""Per-step overhead of ``fit`` over a careful hand-written loop, and who owns it (issue 19).

Two workloads of ``runners.py``: the dispatch-bound ``nn.Linear(8, 2)`` at batch 8 (a step
computes almost nothing, so the host's per-step work decides its time) and the 784-128-10
MLP at batch 64. Each trains with Adam (lr 1e-3, eps 1e-7), sparse categorical crossentropy
on logits and accuracy, through four rows built once and then timed **alternating in one
process** (the order rotates each round), one torch thread, CPU time:

- the hand-written loop (``runners.fast_loop_session``): torch's fused Adam, data on the
  device once, a device permutation per epoch, no ``.item()`` per step;
- ``tc`` ``fit(verbose=0)``, ``fit(verbose=1)`` (the bar drawn into a buffer) and
  ``fit`` with ``steps_per_execution=8`` (plus ``cuda_graph=True`` on CUDA).

It prints µs/step per row and, for each ``tc`` row, the overhead in µs/step and the ratio,
both medians over the rounds of (tc, hand loop) pairs. Then, for ``fit(verbose=0)``:

- **ATen ops per step** for both loops (a counting ``TorchDispatchMode``, forward, backward
  and optimizer included), each op charged to the owner of the innermost frame that issued
  it (a ``torchcompile`` module, a line of the hand loop, or the common work: the user's
  layers, autograd's backward, the optimizer's step);
- **a cProfile breakdown by owner**: every function's own time (``tottime``) charged to an
  owner. ``torchcompile`` functions map by module (below); torch's and Python's functions
  (kernels called from Python, ``nn.Module.__call__``, ``F.cross_entropy``...) inherit the
  owner of their callers, in proportion to the time each caller edge spent in them, up to
  the nearest ``torchcompile`` function, hand-loop line or common boundary. cProfile adds a
  cost to every Python call, so the profiled overhead is larger than the measured one; the
  last column scales the profiled differences to the measured overhead.

Owners: ``engine/data_adapters.py``, ``array_adapter.py``, ``data_adapter_utils.py``,
``epoch_iterator.py`` and ``core/batches.py`` → data slicing; ``model.py:forward``,
``engine/module_inputs.py`` and the model's own ``nn.Module.__call__`` → forward call;
``losses/``, ``CompiledLoss``, ``Model.compute_loss`` → loss; ``Compiled.track_loss`` and the
``Mean`` it updates → loss tracker; other metrics, ``CompiledMetrics``,
``Compiled.update_metrics``, ``Model.compute_metrics`` → metrics; ``optimizers/`` (step hooks)
→ optimizer hooks; ``mixed_precision.py`` → precision policy; ``callbacks/`` → callbacks/bar;
``engine/fast_step.py`` (the default step specialised: its loss-tracker update, ``detach`` and
calls) → fast step (own lines); ``engine/loop.py``, ``run.py``, ``execution.py``, the rest of
``model.py`` and ``compiled.py`` → loop bookkeeping; the rest of ``core/`` and
``metrics/metric.py``'s shared code inherit from their callers.

    python benchmarks/overhead.py                      # both workloads, about a minute
    python benchmarks/overhead.py --markdown           # the tables as benchmarks/README.md carries them
    python benchmarks/overhead.py --workloads linear8 --rounds 21 --top 15
    python benchmarks/overhead.py --timing-only        # the timed rows only, about 25 s
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import inspect
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runners  # noqa: E402

ROWS = {
    "fast": "hand-written loop (fused Adam)",
    "tc0": "tc fit(verbose=0)",
    "tc1": "tc fit(verbose=1)",
    "tc_spe": "tc fit, steps_per_execution=8",
}
EPOCHS = {"linear8": 1, "mlp64": 2}  # per timed call: 512 and 256 steps

# Owners, in the order the tables list them.
COMMON = ("common: forward compute", "common: backward", "common: optimizer step")
OWNERS = (
    "data slicing",
    "forward call",
    "loss",
    "loss tracker",
    "metrics",
    "optimizer hooks",
    "precision policy",
    "callbacks/bar",
    "fast step (own lines)",
    "loop bookkeeping",
) + COMMON
UNATTRIBUTED = "other (unattributed)"


# ---------------------------------------------------------------- timing
def session(row: str, key: str, device: torch.device) -> Callable[[int, int], None]:
    if row == "phased":
        return phased_fast_session(key, device)
    if row == "fast":
        return runners.fast_loop_session(key, device)
    if row == "tc0":
        return runners.tc_fit_session(key, device, verbose=0)
    if row == "tc1":
        return runners.tc_fit_session(key, device, verbose=1)
    return runners.tc_fit_session(key, device, steps_per_execution=8, cuda_graph=device.type == "cuda")


def time_rows(key: str, device: torch.device, rounds: int) -> tuple[dict[str, list[float]], int]:
    """CPU seconds per step of each row, ``rounds`` times, alternating in this process."""
    w = runners.WORKLOADS[key]
    epochs = EPOCHS.get(key, 1)
    steps = epochs * -(-w.samples // w.batch_size)
    torch.manual_seed(0)
    runs = {row: session(row, key, device) for row in ROWS}
    for run in runs.values():  # warm-up: lazy imports, allocators, first-batch resolution
        run(1, w.samples // 8)
    times: dict[str, list[float]] = {row: [] for row in ROWS}
    order = list(ROWS)
    for r in range(rounds):
        shift = r % len(order)
        for row in order[shift:] + order[:shift]:
            runners.sync(device)
            start = time.process_time()
            runs[row](epochs, w.samples)
            runners.sync(device)
            times[row].append((time.process_time() - start) / steps)
    return times, steps


def summarize(times: dict[str, list[float]]) -> list[tuple[str, float, float | None, float | None, str]]:
    """``(row, µs/step, overhead µs/step, ratio, ratio range)``; overhead and ratio are medians of pairs."""
    base = times["fast"]
    out = []
    for row, values in times.items():
        per_step = statistics.median(values) * 1e6
        if row == "fast":
            out.append((row, per_step, None, None, ""))
            continue
        diffs = [(t - f) * 1e6 for t, f in zip(values, base)]
        ratios = [t / f for t, f in zip(values, base)]
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
        out.append((row, per_step, statistics.median(diffs), statistics.median(ratios), spread))
    return out


def phased_fast_session(key: str, device: torch.device) -> Callable[[int, int], None]:
    """``runners.fast_loop_session``'s loop with each phase in a function of its own, the same ATen ops
    in the same order: for the profile and the op counts only (cProfile sees no ``x[i]`` or ``+=``
    inside one function, so the timed hand loop's phases could not be told apart)."""
    import torch.nn.functional as F

    w = runners.WORKLOADS[key]
    x, y = runners.make_data(w)
    module = runners.make_module(key).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7, fused=True)

    def _hand_slice(xs, ys, order, begin):
        index = order[begin : begin + w.batch_size]
        return xs[index], ys[index]

    def _hand_forward(xb):
        return module(xb)

    def _hand_loss(logits, yb):
        return F.cross_entropy(logits, yb)

    def _hand_step(loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _hand_track_loss(total, loss, yb):
        total += loss.detach() * yb.shape[0]

    def _hand_accuracy(correct, logits, yb):
        correct += (logits.detach().argmax(-1) == yb).sum()

    def run(n_epochs: int, limit: int) -> None:
        xs, ys = torch.from_numpy(x[:limit]).to(device), torch.from_numpy(y[:limit]).to(device)
        module.train()
        for _ in range(n_epochs):
            total, correct = torch.zeros((), device=device), torch.zeros((), device=device)
            order = torch.randperm(limit, device=device)
            for begin in range(0, limit, w.batch_size):
                xb, yb = _hand_slice(xs, ys, order, begin)
                logits = _hand_forward(xb)
                loss = _hand_loss(logits, yb)
                _hand_step(loss)
                _hand_track_loss(total, loss, yb)
                _hand_accuracy(correct, logits, yb)
            _ = [(total / limit).item(), (correct / limit).item()]  # one sync per epoch

    return run


HAND_PHASES = {
    "_hand_slice": "data slicing",
    "_hand_forward": "forward call",
    "_hand_loss": "loss",
    "_hand_step": "loop bookkeeping",  # its calls are the common work: backward and the optimizer's step
    "_hand_track_loss": "loss tracker",
    "_hand_accuracy": "metrics",
}


# ---------------------------------------------------------------- owners
class Owners:
    """Which owner a function's own time belongs to (None: inherit from its callers)."""

    def __init__(self) -> None:
        import torchcompile
        from torchcompile.engine import compile_utils, compiled
        from torchcompile.metrics import metric

        self.tc_root = os.path.dirname(os.path.abspath(torchcompile.__file__)).replace(os.sep, "/") + "/"
        self.runners_file = os.path.abspath(runners.__file__).replace(os.sep, "/")
        # Functions by line range: the classes whose methods have one owner.
        self.ranges: list[tuple[str, int, int, str | None]] = []
        for cls, owner in (
            (compile_utils.CompiledLoss, "loss"),
            (compile_utils.CompiledMetrics, "metrics"),
            (metric.MeanMetricWrapper, "metrics"),
        ):
            lines, start = inspect.getsourcelines(cls)
            self.ranges.append((self._path(inspect.getsourcefile(cls)), start, start + len(lines), owner))
        self.compiled_file = self._path(compiled.__file__)
        self.this_file = self._path(__file__)
        self.qualnames: dict[tuple[str, int], str] = {}
        self.harness = (self.runners_file, self.this_file)

    def label(self, func: tuple) -> str:
        """``module.py:Class.method`` of a torchcompile function (cProfile keys by file, line, name)."""
        if not self.qualnames:
            self._index_qualnames()
        filename, line, name = func
        qualname = self.qualnames.get((self._path(filename), line))
        module = self.tc_module(filename)
        return f"{module}:{qualname}" if qualname else f"{module}:{name} (line {line})"

    def _index_qualnames(self) -> None:
        for modname, module in list(sys.modules.items()):
            if not modname.startswith("torchcompile") or module is None:
                continue
            for obj in list(vars(module).values()):
                if getattr(obj, "__module__", None) != modname:
                    continue
                members = [obj] + (list(vars(obj).values()) if isinstance(obj, type) else [])
                for member in members:
                    for fn in (member, getattr(member, "fget", None), getattr(member, "__func__", None)):
                        code = getattr(fn, "__code__", None)
                        if code is not None:
                            key = (self._path(code.co_filename), code.co_firstlineno)
                            self.qualnames[key] = fn.__qualname__

    @staticmethod
    def _path(filename: str) -> str:
        return os.path.abspath(filename).replace(os.sep, "/")

    def tc_module(self, filename: str) -> str | None:
        path = filename.replace(os.sep, "/")
        return path[len(self.tc_root) :] if path.startswith(self.tc_root) else None

    def of_function(self, filename: str, line: int, name: str) -> str | None:
        """The owner of a function's own time, or None when it inherits from its callers."""
        module = self.tc_module(filename)
        if module is not None:
            return self._tc_owner(module, self._path(filename), line, name)
        path = filename.replace(os.sep, "/")
        if "/torch/optim/" in path:
            return "common: optimizer step"
        if "/torch/autograd/profiler" in path:
            return None  # record_function, around the optimizer's zero_grad and step
        if "/torch/autograd/" in path or (path.endswith("/torch/_tensor.py") and name == "backward"):
            return "common: backward"
        if "/torch/nn/modules/" in path and not path.endswith("/module.py"):
            return "common: forward compute"  # the user's layers (Linear, Sequential, ReLU...)
        if path == self.this_file and name in HAND_PHASES:
            return HAND_PHASES[name]
        if path == self.this_file and name == "run":
            return "loop bookkeeping"  # the hand loop's own lines
        if path in self.harness:
            return "benchmark harness"
        return None

    def _tc_owner(self, module: str, path: str, line: int, name: str) -> str | None:
        for file, start, end, owner in self.ranges:
            if path == file and start <= line < end:
                return owner
        top = module.split("/")[0]
        if (top == "core" and module != "core/batches.py") or module == "metrics/metric.py":
            return None  # shared helpers: charged to whoever called them
        if module in (
            "engine/data_adapters.py",
            "engine/array_adapter.py",
            "engine/data_adapter_utils.py",
            "engine/epoch_iterator.py",
            "core/batches.py",
        ):
            return "data slicing"
        if module == "engine/module_inputs.py" or (module == "model.py" and name in ("forward", "_with_labels")):
            return "forward call"
        if top == "losses" or (module == "model.py" and name == "compute_loss"):
            return "loss"
        if module == "engine/compiled.py" and name == "track_loss":
            return "loss tracker"
        if top == "metrics" or (module == "engine/compiled.py" and name == "update_metrics"):
            return "metrics"
        if module == "model.py" and name in ("compute_metrics", "_metrics_now", "metrics"):
            return "metrics"
        if top == "optimizers":
            return "optimizer hooks"
        if module == "mixed_precision.py":
            return "precision policy"
        if top == "callbacks":
            return "callbacks/bar"
        if module == "engine/fast_step.py":
            return "fast step (own lines)"
        return "loop bookkeeping"

    def of_edge(self, caller: tuple, callee: tuple) -> str | None:
        """The owner of ``callee``'s time when ``caller`` called it, or None to look further up."""
        c_file, c_line, c_name = caller
        module = self.tc_module(c_file)
        if module is not None:
            if "/torch/nn/modules/module.py" in callee[0].replace(os.sep, "/"):
                return "forward call"  # nn.Module.__call__ of the tc.Model or the wrapped module
            return self._tc_owner(module, self._path(c_file), c_line, c_name)
        if "/torch/nn/modules/module.py" in callee[0].replace(os.sep, "/") and c_file == self.this_file:
            return "forward call"  # the hand loop's one nn.Module.__call__
        return self.of_function(c_file, c_line, c_name)


def breakdown(stats: pstats.Stats, owners: Owners, steps: int) -> dict[str, Any]:
    """Per step: {owner: [µs, calls]}, {torchcompile function: [µs, calls]} (its own time plus the torch
    calls it makes, directly or through torch's Python), and all calls."""
    raw = stats.stats  # {func: (cc, nc, tt, ct, callers {caller: (cc, nc, tt, ct)})}
    owner_memo: dict[tuple, dict[str, float]] = {}
    site_memo: dict[tuple, dict[str, float]] = {}

    def shares(func: tuple) -> list[tuple[tuple, float]]:
        weights = {c: (v[2] or 1e-9 * v[1]) for c, v in raw[func][4].items()}
        total = sum(weights.values())
        return [(c, w / total) for c, w in weights.items()] if total else []

    def owner_dist(func: tuple, depth: int = 0) -> dict[str, float]:
        """Fractions of ``func``'s own time per owner."""
        if func in owner_memo:
            return owner_memo[func]
        owner = owners.of_function(*func)
        if owner is not None:
            result: dict[str, float] = {owner: 1.0}
        else:
            owner_memo[func] = {UNATTRIBUTED: 1.0}  # a cycle (or no caller) stays unattributed
            result = collections.Counter()
            for caller, share in shares(func) if depth < 40 else []:
                edge = owners.of_edge(caller, func)
                for key, fraction in ({edge: 1.0} if edge else owner_dist(caller, depth + 1)).items():
                    result[key] += share * fraction
            result = dict(result) or {UNATTRIBUTED: 1.0}
        owner_memo[func] = result
        return result

    def site_dist(func: tuple, depth: int = 0) -> dict[str, float]:
        """Fractions of ``func``'s own time per torchcompile function (none for the common work)."""
        if func in site_memo:
            return site_memo[func]
        if owners.tc_module(func[0]) is not None:
            result: dict[str, float] = {owners.label(func): 1.0}
        elif owners.of_function(*func) is not None:
            result = {}
        else:
            site_memo[func] = {}
            result = collections.Counter()
            for caller, share in shares(func) if depth < 40 else []:
                for key, fraction in site_dist(caller, depth + 1).items():
                    result[key] += share * fraction
            result = dict(result)
        site_memo[func] = result
        return result

    by_owner: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    by_site: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    calls = 0
    for func, (_, nc, tt, _, _) in raw.items():
        calls += nc
        for table, dist in ((by_owner, owner_dist(func)), (by_site, site_dist(func))):
            for key, fraction in dist.items():
                table[key][0] += tt * fraction / steps * 1e6
                table[key][1] += nc * fraction / steps
    return {"owner": dict(by_owner), "site": dict(by_site), "calls": calls / steps}


def profile_rows(key: str, device: torch.device, repeats: int, runs_each: int = 3) -> dict[str, Any]:
    """cProfile (CPU-time clock) of the hand loop and fit(verbose=0), interleaved ``runs_each`` times; per
    owner and per function the median over runs."""
    w = runners.WORKLOADS[key]
    epochs = EPOCHS.get(key, 1)
    steps = epochs * -(-w.samples // w.batch_size) * repeats
    owners = Owners()
    results: dict[str, list] = {"fast": [], "tc0": []}
    runs = {row: session("phased" if row == "fast" else row, key, device) for row in results}
    for run in runs.values():
        run(1, w.samples // 8)
    for _ in range(runs_each):
        for row, run in runs.items():
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            for _ in range(repeats):
                run(epochs, w.samples)
            profiler.disable()
            results[row].append(breakdown(pstats.Stats(profiler), owners, steps))
    out: dict[str, Any] = {}
    for row, found in results.items():
        out[row] = {"calls": statistics.median(r["calls"] for r in found)}
        for table in ("owner", "site"):
            keys = set().union(*(r[table] for r in found))
            out[row][table] = {
                k: [statistics.median(r[table].get(k, [0.0, 0.0])[i] for r in found) for i in (0, 1)] for k in keys
            }
    return out


# ---------------------------------------------------------------- ATen ops
class CountOps(TorchDispatchMode):
    """Counts ATen ops, each charged to the innermost owner on the Python stack."""

    def __init__(self, owners: Owners) -> None:
        super().__init__()
        self.owners = owners
        self.counts: dict[str, int] = collections.Counter()
        self.names: dict[tuple[str, str], int] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        owner = self._owner(sys._getframe(1))
        self.counts[owner] += 1
        self.names[(owner, str(func.overloadpacket.__name__))] += 1
        return func(*args, **(kwargs or {}))

    def _owner(self, frame: Any) -> str:
        owners = self.owners
        while frame is not None:
            code = frame.f_code
            owner = owners.of_function(code.co_filename, code.co_firstlineno, code.co_name)
            if owner is not None:
                return owner
            frame = frame.f_back  # torch's Python, core/ and metric.py's shared code: ask the caller
        return UNATTRIBUTED


def count_ops(key: str, device: torch.device) -> dict[str, Any]:
    """ATen ops per step of one epoch, by owner, for the hand loop and fit(verbose=0)."""
    w = runners.WORKLOADS[key]
    limit = w.samples  # one epoch: what runs once per fit (the first-batch checks) shows as a fraction
    steps = -(-limit // w.batch_size)
    owners = Owners()
    out = {}
    for row in ("fast", "tc0"):
        run = session("phased" if row == "fast" else row, key, device)
        run(1, w.samples // 8)
        with CountOps(owners) as mode:
            run(1, limit)
        out[row] = {
            "owner": {k: v / steps for k, v in mode.counts.items()},
            "names": {k: v / steps for k, v in mode.names.items()},
            "total": sum(mode.counts.values()) / steps,
        }
    return out


# ---------------------------------------------------------------- common work, timed directly
def time_common(key: str, device: torch.device, rounds: int = 5) -> dict[str, dict[str, float]]:
    """CPU µs/step inside ``Tensor.backward`` and ``Optimizer.step`` for the hand loop and fit(verbose=0)
    (alternating, median of ``rounds`` epochs): is the "common" work really the same?"""
    w = runners.WORKLOADS[key]
    steps = -(-w.samples // w.batch_size)
    runs = {row: session(row, key, device) for row in ("fast", "tc0")}
    for run in runs.values():
        run(1, w.samples // 8)
    spent = {"backward": 0.0, "optimizer step": 0.0}
    backward, step = torch.Tensor.backward, torch.optim.Adam.step  # Adam.step: torch's hooked wrapper

    def timed_backward(self, *args, **kwargs):
        start = time.process_time()
        try:
            return backward(self, *args, **kwargs)
        finally:
            spent["backward"] += time.process_time() - start

    def timed_step(self, *args, **kwargs):
        start = time.process_time()
        try:
            return step(self, *args, **kwargs)
        finally:
            spent["optimizer step"] += time.process_time() - start

    found: dict[str, dict[str, list[float]]] = {row: {k: [] for k in spent} for row in runs}
    torch.Tensor.backward, torch.optim.Adam.step = timed_backward, timed_step
    try:
        for _ in range(rounds):
            for row, run in runs.items():
                spent.update({k: 0.0 for k in spent})
                run(1, w.samples)
                for k, v in spent.items():
                    found[row][k].append(v / steps * 1e6)
    finally:
        torch.Tensor.backward, torch.optim.Adam.step = backward, step
    return {row: {k: statistics.median(v) for k, v in by.items()} for row, by in found.items()}


# ---------------------------------------------------------------- report
def _order(keys: set) -> list[str]:
    known = [k for k in OWNERS if k in keys]
    return known + sorted(k for k in keys if k not in OWNERS)


def _op_list(names: dict[tuple[str, str], float], owner: str) -> str:
    ops = sorted(((n, c) for (o, n), c in names.items() if o == owner and c >= 0.05), key=lambda x: (-x[1], x[0]))
    return ", ".join(f"`{n}`" + (f"×{c:.2g}" if abs(c - 1) > 0.01 else "") for n, c in ops)


def report(key: str, device: torch.device, args: argparse.Namespace) -> str:
    w = runners.WORKLOADS[key]
    lines: list[str] = []
    times, steps = time_rows(key, device, args.rounds)
    summary = summarize(times)
    lines.append(f"### {w.name}\n")
    lines.append(
        f"{args.rounds} rounds of {steps} steps per row, alternating in one process; "
        "µs/step is the median, overhead and ratio the medians of the (tc, hand loop) pairs.\n"
    )
    lines.append("| row | µs/step (CPU) | overhead µs/step | × hand loop | range of pairs |")
    lines.append("|---|---:|---:|---:|---:|")
    measured, per_step_of = {}, {}
    for row, per_step, diff, ratio, spread in summary:
        measured[row], per_step_of[row] = diff, per_step
        d = f"{diff:+.1f}" if diff is not None else "—"
        r = f"{ratio:.2f}×" if ratio is not None else "1.00×"
        lines.append(f"| {ROWS[row]} | {per_step:.1f} | {d} | {r} | {spread or '—'} |")
    if args.timing_only:
        return "\n".join(lines) + "\n"

    ops = count_ops(key, device)
    prof = profile_rows(key, device, args.profile_repeats)
    fast, tc = prof["fast"]["owner"], prof["tc0"]["owner"]
    # cProfile charges about the same cost to every call it records: per loop, the cost per call that
    # brings the profiled total down to the measured µs/step; each owner then loses its calls' share.
    cost = {
        row: max(0.0, (sum(v[0] for v in prof[row]["owner"].values()) - per_step_of[row]) / prof[row]["calls"])
        for row in ("fast", "tc0")
    }

    def net(row: str, value: list[float]) -> float:
        return value[0] - cost[row] * value[1]

    zero = [0.0, 0.0]
    total_f, total_t = (sum(v[0] for v in table.values()) for table in (fast, tc))
    lines.append("")
    lines.append(
        "Breakdown of `fit(verbose=0)` against the hand loop (the same loop, its phases in functions): ATen ops "
        "per step (a counting dispatch mode) and cProfile CPU time per step by owner (torch's calls charged to "
        f"their owner). Profiled: hand loop {total_f:.0f} µs/step, {prof['fast']['calls']:.0f} calls; tc "
        f"{total_t:.0f} µs/step, {prof['tc0']['calls']:.0f} calls. The net columns take off cProfile's cost per "
        f"recorded call ({cost['fast']:.2f} and {cost['tc0']:.2f} µs, what brings each total to its measured "
        "µs/step), times the calls each owner made.\n"
    )
    lines.append(
        "| owner | ATen ops: hand | ATen ops: tc | calls: hand | calls: tc | µs profiled: hand | µs profiled: tc "
        "| µs net: hand | µs net: tc | **extra µs (net)** |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fo, to = ops["fast"]["owner"], ops["tc0"]["owner"]
    sums = [0.0] * 8
    for owner in _order(set(fast) | set(tc) | set(fo) | set(to)):
        a, b = fast.get(owner, zero), tc.get(owner, zero)
        na, nb = net("fast", a), net("tc0", b)
        values = [fo.get(owner, 0), to.get(owner, 0), a[1], b[1], a[0], b[0], na, nb]
        sums = [x + y for x, y in zip(sums, values)]
        if max(abs(v) for v in values) < 0.05:
            continue
        lines.append(
            f"| {owner} | {values[0]:.1f} | {values[1]:.1f} | {a[1]:.1f} | {b[1]:.1f} | {a[0]:.1f} | {b[0]:.1f} | "
            f"{na:.1f} | {nb:.1f} | **{nb - na:+.1f}** |"
        )
    lines.append("| **total** | " + " | ".join(f"{v:.1f}" for v in sums) + f" | **{sums[7] - sums[6]:+.1f}** |")
    common = time_common(key, device)
    lines.append("")
    lines.append(
        "The common work timed directly (wrappers around `Tensor.backward` and `Adam.step`, CPU µs/step, "
        "median of 5 alternating epochs): "
        + "; ".join(
            f"{k}: hand loop {common['fast'][k]:.1f}, tc {common['tc0'][k]:.1f} "
            f"({common['tc0'][k] - common['fast'][k]:+.1f})"
            for k in common["fast"]
        )
        + "."
    )
    names_f, names_t = ops["fast"]["names"], ops["tc0"]["names"]
    lines.append("")
    lines.append("ATen ops per step by owner where the two loops differ (hand loop → tc):\n")
    for owner in _order({o for o, _ in names_f} | {o for o, _ in names_t}):
        hand = _op_list(names_f, owner)
        mine = _op_list(names_t, owner)
        if hand != mine:
            lines.append(f"- {owner}: {hand or 'none'} → {mine or 'none'}")
    lines.append("")
    sites = sorted(prof["tc0"]["site"].items(), key=lambda kv: -net("tc0", kv[1]))[: args.top]
    lines.append(
        f"Top {len(sites)} torchcompile functions by net µs per step: own time plus the torch calls they make, "
        "directly or through torch's Python (the user's layers, backward and the optimizer's step excluded):\n"
    )
    lines.append("| torchcompile function | calls/step | µs profiled | µs net |")
    lines.append("|---|---:|---:|---:|")
    for where, value in sites:
        lines.append(f"| `{where}` | {value[1]:.1f} | {value[0]:.1f} | {net('tc0', value):.1f} |")
    return "\n".join(lines) + "\n"


def header(device: torch.device) -> str:
    """Date, the torchcompile measured (the commit of its checkout, and whether it differs from it), machine."""
    import torchcompile

    source = os.path.dirname(os.path.dirname(os.path.abspath(torchcompile.__file__)))

    def git(*command: str) -> str:
        try:
            done = subprocess.run(["git", "-C", source, *command], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if commit:
        changed = git("status", "--porcelain", "--", "torchcompile")
        dirty = " (with uncommitted changes in torchcompile/)" if changed else ""
        where = f"torchcompile at commit {commit}{dirty}"
    else:
        where = f"torchcompile from {source} (not a git checkout)"
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d')}, {where}; {device}, {torch.get_num_threads()} torch thread(s), torch "
        f"{torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} at the start"
    )


def plain(text: str) -> str:
    """The markdown as aligned text for a terminal: tables in columns, no separators or emphasis."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(max(map(len, table)))]
            for row in table:
                cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
                out.append("  ".join(cells).rstrip())
            table.clear()

    for line in text.replace("**", "").replace("`", "").splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-:") for c in cells):
                table.append(cells)
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="linear8,mlp64", help="comma-separated, from: linear8,mlp64,mlp1024")
    parser.add_argument("--rounds", type=int, default=21, help="alternating rounds (pairs) per workload")
    parser.add_argument("--profile-repeats", type=int, default=2, help="timed calls per cProfile run")
    parser.add_argument("--top", type=int, default=12, help="torchcompile functions to list")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--markdown", action="store_true", help="print markdown for benchmarks/README.md")
    parser.add_argument("--timing-only", action="store_true", help="the timed rows only, no breakdown (quicker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    started = time.perf_counter()
    out = [header(device), ""]
    for key in args.workloads.split(","):
        out.append(report(key, device, args))
    load = os.getloadavg()
    out.append(f"({time.perf_counter() - started:.0f} s; load average {load[0]:.1f} at the end)")
    text = "\n".join(out)
    print(text if args.markdown else plain(text))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
