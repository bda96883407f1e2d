# SPDX-License-Identifier: Apache-2.0
"""What does ``fit`` cost over a hand-written fast loop, and over Keras 3 and Lightning?

The same model, data, batch size and number of steps through every runner of
``runners.py``: a hand-written fast loop (the floor), a tutorial loop, tc ``fit`` (verbose 0
and 1, ``steps_per_execution``, ``jit_compile``, ``mixed_bfloat16``), Keras 3 on the torch
backend and a Lightning Trainer. Each run is its own process (no shared allocator, caches
or imports); rounds go over the runners in turn, so a change in machine load hits them all
alike. The table gives each row's median CPU time per step and, as ratios, the median
over rounds of its time over the fast loop's in the same round, with peak memory.

    pip install -e .[bench]
    python benchmarks/fit_overhead.py                          # every workload, CPU, 1 thread
    python benchmarks/fit_overhead.py --workloads mlp64 --runners fast,tc0,tc1 --rounds 5
    python benchmarks/fit_overhead.py --device cuda            # the same table on a GPU

On a CPU shared with other jobs wall time is noisy: the ratio columns use CPU time (one
torch thread, so CPU time is the time the run itself computed), and wall ratios are shown
beside them. ``--markdown`` prints the table as the README carries it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_RUNNERS = "fast,tutorial,tc0,tc1,tc_spe,tc_jit,keras,lightning"
EXTRA_RUNNERS = "tc_bf16,tc_f16,tc_graph,tc_spe_bf16"


def worker(args: argparse.Namespace) -> None:
    """One run in this process: print ``RESULT {json}`` as the last line."""
    import torch

    sys.path.insert(0, HERE)
    import runners
    from runners import RUNNERS, WORKLOADS

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runners.REPEATS = args.repeats
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    wall, cpu = RUNNERS[args.worker][1](args.workloads, device, args.epochs)
    w = WORKLOADS[args.workloads]
    steps = args.epochs * -(-w.samples // w.batch_size)
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        "RESULT "
        + json.dumps({"wall": wall, "cpu": cpu, "steps": steps, "peak_mb": peak / 2**20, "device": str(device)})
    )


def paired_worker(args: argparse.Namespace) -> None:
    """``--paired N``: the rows alternate N times in this one process (one timed fit each, after its
    own warm-up); prints ``RESULT {"cpu": {row: [seconds, ...]}, "wall": {...}, "failed": {row: error}}``.
    In-process pairs see the same machine state, so their ratios are tighter than those of separate
    processes. A row that raises is reported as failed and the others go on (a first run on CUDA)."""
    import traceback

    import torch

    sys.path.insert(0, HERE)
    import runners

    torch.set_num_threads(args.threads)
    runners.REPEATS = 1
    device = torch.device(args.device if args.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu")
    rows = args.runners.split(",")
    times: dict[str, dict[str, list[float]]] = {"cpu": {r: [] for r in rows}, "wall": {r: [] for r in rows}}
    failed: dict[str, str] = {}
    for _ in range(args.paired):
        for runner in rows:
            if runner in failed:
                continue
            torch.manual_seed(0)
            try:
                wall, cpu = runners.RUNNERS[runner][1](args.workloads, device, args.epochs)
            except Exception as error:  # noqa: BLE001 - reported, and the other rows still run
                failed[runner] = f"{type(error).__name__}: {error}"[:300]
                traceback.print_exc()
                continue
            times["cpu"][runner].append(cpu)
            times["wall"][runner].append(wall)
            print(f"PROGRESS {runner} {wall:.3f}", flush=True)
    print("RESULT " + json.dumps({**times, "failed": failed}))


def run_one(runner: str, workload: str, args: argparse.Namespace) -> dict | None:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        runner,
        "--workloads",
        workload,
        "--epochs",
        str(args.epochs),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
    ]
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        print(f"  {runner} on {workload} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULT ") :])


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[dict]]]:
    runners = args.runners.split(",")
    results: dict[str, dict[str, list[dict]]] = {w: {r: [] for r in runners} for w in args.workloads.split(",")}
    for round_ in range(args.rounds):
        for workload, by_runner in results.items():
            shift = round_ % len(runners)  # each round starts elsewhere: no runner always runs first
            for runner in runners[shift:] + runners[:shift]:
                result = run_one(runner, workload, args)
                if result is not None:
                    by_runner[runner].append({**result, "round": round_})
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    return results


def table(results: dict[str, dict[str, list[dict]]], markdown: bool) -> str:
    sys.path.insert(0, HERE)
    from runners import RUNNERS, WORKLOADS

    rows = (
        [
            "| workload | runner | µs/step (CPU) | × fast loop (CPU) | × fast loop (wall) | peak MB |",
            "|---|---|---:|---:|---:|---:|",
        ]
        if markdown
        else []
    )
    for workload, by_runner in results.items():
        base = {r["round"]: r for r in by_runner.get("fast") or []}
        if not markdown:
            rows.append(f"{WORKLOADS[workload].name} ({base[0]['device'] if base else '?'})")
        for runner, runs in by_runner.items():
            if not runs:
                continue
            per_step = statistics.median(r["cpu"] for r in runs) / runs[0]["steps"] * 1e6
            peak = statistics.median(r["peak_mb"] for r in runs)
            ratio_cpu, ratio_wall = (_paired_ratio(runs, base, clock) for clock in ("cpu", "wall"))
            name = RUNNERS[runner][0]
            if markdown:
                rows.append(
                    f"| {WORKLOADS[workload].name} | {name} | {per_step:.0f} | {ratio_cpu} | "
                    f"{ratio_wall} | {peak:.0f} |"
                )
            else:
                rows.append(
                    f"  {name:<38} {per_step:9.0f} us/step  {ratio_cpu:>7} cpu  {ratio_wall:>7} wall  {peak:8.0f} MB"
                )
    return "\n".join(rows)


def print_paired(args: argparse.Namespace) -> None:
    """``--paired``: per workload, one process alternating the rows; ratios are medians of pairs.
    CPU time on a CPU; on CUDA wall time (the device works asynchronously, and a host waiting on it
    spins)."""
    sys.path.insert(0, HERE)
    from runners import RUNNERS, WORKLOADS

    rows = args.runners.split(",")
    clock = args.clock or ("wall" if args.device.startswith("cuda") else "cpu")
    lines = [
        f"{args.device}, {args.threads} torch thread(s), rows alternating {args.paired} times in one process "
        f"per workload, one fit of {args.epochs} epochs each; {clock} time",
        "",
        f"| workload | runner | µs/step ({clock}, median) | × {RUNNERS[rows[0]][0]} (median of pairs) "
        "| range of pairs |",
        "|---|---|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for workload in args.workloads.split(","):
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            "paired",
            "--workloads",
            workload,
            "--runners",
            args.runners,
            "--paired",
            str(args.paired),
            "--epochs",
            str(args.epochs),
            "--threads",
            str(args.threads),
            "--device",
            args.device,
        ]
        env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": str(args.threads)}
        w = WORKLOADS[workload]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout * args.paired)
            stdout, stderr = done.stdout, done.stderr
        except subprocess.TimeoutExpired as error:
            stdout = error.stdout.decode() if isinstance(error.stdout, bytes) else error.stdout or ""
            stderr = f"timed out after {error.timeout:.0f} s"
        results = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        if not results:
            finished = [line.split()[1] for line in stdout.splitlines() if line.startswith("PROGRESS ")]
            row = f"| {w.name} | (failed) | — | — | {stderr.strip().splitlines()[-1] if stderr.strip() else '?'}"
            print(row + (f"; finished: {','.join(finished)}" if finished else "") + " |", flush=True)
            print(f"  {workload} failed:\n{stderr[-3000:]}", file=sys.stderr)
            lines.append(row)
            continue
        found = json.loads(results[-1][len("RESULT ") :])
        times, failed = found[clock], found.get("failed", {})
        steps = args.epochs * -(-w.samples // w.batch_size)
        for row in rows:
            if row in failed or not times[row]:
                line = f"| {w.name} | {RUNNERS[row][0]} | failed | — | {failed.get(row, 'no run')} |"
            else:
                base = times[rows[0]]
                ratios = [t / f for t, f in zip(times[row], base)] if base else []
                ratio = f"{statistics.median(ratios):.2f}×" if ratios else "—"
                spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "—"
                line = (
                    f"| {w.name} | {RUNNERS[row][0]} | {statistics.median(times[row]) / steps * 1e6:.0f} | "
                    f"{ratio} | {spread} |"
                )
            print(line, flush=True)
            lines.append(line)
    if args.output:
        with open(args.output, "a") as f:
            f.write("\n".join(lines) + "\n\n")


def _paired_ratio(runs: list[dict], base: dict[int, dict], clock: str) -> str:
    """Median over rounds of this row's time over the fast loop's in the same round."""
    ratios = [r[clock] / base[r["round"]][clock] for r in runs if r["round"] in base]
    return f"{statistics.median(ratios):.2f}×" if ratios else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workloads", default="mlp64,mlp1024,cnn128", help="comma-separated: linear8,mlp64,mlp1024,cnn128"
    )
    parser.add_argument(
        "--runners", default=DEFAULT_RUNNERS, help=f"comma-separated, from: {DEFAULT_RUNNERS},{EXTRA_RUNNERS}"
    )
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed fit (after a warm-up epoch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per process (median taken)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per runner; the table shows medians")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--markdown", action="store_true", help="print the README's table")
    parser.add_argument("--json", help="also write every run's numbers to this file")
    parser.add_argument(
        "--paired", type=int, default=0, help="instead: alternate the rows this many times in one process per workload"
    )
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), help="--paired: the clock (default: wall on CUDA, else cpu)"
    )
    parser.add_argument("--output", help="--paired: also append the markdown table to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "paired":
        paired_worker(args)
        return
    if args.worker:
        worker(args)
        return
    if args.paired:
        print_paired(args)
        return
    results = measure(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    load = os.getloadavg()
    print(
        f"{args.device}, {args.threads} torch thread(s), median over {args.rounds} processes of the median of "
        f"{args.repeats} fits of {args.epochs} epochs; load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}"
    )
    print(table(results, args.markdown))


if __name__ == "__main__":
    main()
