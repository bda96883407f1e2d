#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The CUDA check of issue 19, for the few minutes a GPU machine is lent: the gpu-marked tests, then
# the CUDA benchmark (the dispatch-bound nn.Linear(8, 2) at batch 8, the 784-128-10 MLP at batch 64,
# the small CNN at batch 128) with the hand-written loop, fit(verbose=0/1), steps_per_execution=8 +
# cuda_graph=True, cuda_graph=True alone, mixed_bfloat16, mixed_float16 and steps_per_execution=8 +
# cuda_graph + mixed_bfloat16, rows alternating in one process per workload (wall time; ratios are
# medians of pairs). Everything within GPU_CHECK_BUDGET seconds (default 470: under 8 minutes with
# the start-up); a step that runs out of time is cut and reported, the rest still runs.
#
#   bash benchmarks/gpu_check.sh [OUTPUT.md]     # default: $OUT/gpu_check.md, else ./gpu_check.md
#
# Without CUDA it prints a message and exits 0, having done nothing. (GPU_CHECK_DEVICE=cpu runs the
# same steps on the CPU, with a small GPU_CHECK_BUDGET, to try the script itself.)
set -u

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python}"
device="${GPU_CHECK_DEVICE:-cuda}"
if [ "$device" = cuda ] && ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "gpu_check.sh: torch sees no CUDA device here; nothing to do (run it on a machine with a GPU)."
    exit 0
fi

if [ $# -ge 1 ]; then
    out="$1"
elif [ -n "${OUT:-}" ]; then
    out="$OUT/gpu_check.md"
else
    out="$PWD/gpu_check.md"
fi
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$repo" || exit 1
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=torch

budget="${GPU_CHECK_BUDGET:-470}"
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
log="$(mktemp -d)"

{
    echo "# GPU check (benchmarks/gpu_check.sh)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" status --porcelain -- torchcompile 2>/dev/null | grep -q . && echo ' (torchcompile/ modified)')"
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
    echo "- $("$python" -c 'import torch, platform; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, Python {platform.python_version()}")')"
    echo "- host: $(nproc) CPUs"
    echo
} >"$out"

# 1. The gpu-marked tests: at most 160 s.
tests_time=$(($(left) < 160 ? $(left) : 160))
timeout -k 10 "$tests_time" "$python" -m pytest -q -m gpu -p no:cacheprovider -rfEs >"$log/pytest.txt" 2>&1
status=$?
{
    echo "## pytest -m gpu"
    echo
    if [ $status -eq 124 ] || [ $status -eq 137 ]; then
        echo "**Cut after ${tests_time} s** (exit $status)."
    else
        echo "Exit status $status ($((SECONDS - start)) s)."
    fi
    echo
    echo '```'
    tail -n 60 "$log/pytest.txt"
    echo '```'
    echo
    echo "## CUDA benchmark"
    echo
    echo "Device ${device}; rows alternating ${GPU_CHECK_PAIRS:-3} times in one process per workload, one fit of 2"
    echo "epochs each (after its own warm-up fit); wall time; ratios are medians of the pairs."
    echo
    echo "| workload | runner | µs/step (wall, median) | × hand-written fast loop (median of pairs) | range of pairs |"
    echo "|---|---|---:|---:|---:|"
} >>"$out"
echo "pytest -m gpu: exit $status; $(tail -n 1 "$log/pytest.txt")"

# 2. The benchmark: one process per workload, the remaining time shared among them.
rows="fast,tc0,tc1,tc_spe,tc_graph,tc_bf16,tc_f16,tc_spe_bf16"
workloads=(linear8 mlp64 cnn128)
paired="${GPU_CHECK_PAIRS:-3}"
for i in "${!workloads[@]}"; do
    w="${workloads[$i]}"
    remaining=$((${#workloads[@]} - i))
    share=$(($(left) / remaining - 5))
    if [ "$share" -lt 20 ]; then
        echo "| ${w} | (skipped: the time budget is spent) | — | — | — |" >>"$out"
        continue
    fi
    # fit_overhead.py cuts its worker after --timeout x --paired seconds and reports the cut.
    timeout -k 10 $((share + 10)) "$python" benchmarks/fit_overhead.py --device "$device" --paired "$paired" \
        --epochs 2 --workloads "$w" --runners "$rows" --timeout $((share / paired)) \
        --output "$log/$w.md" >"$log/$w.txt" 2>"$log/$w.err"
    status=$?
    if [ -s "$log/$w.md" ]; then
        tail -n +5 "$log/$w.md" | grep '^|' >>"$out"  # the rows (the header is written above)
    else
        echo "| ${w} | (failed, exit ${status}) | — | — | $(tail -n 1 "$log/$w.err" | tr '|' '/') |" >>"$out"
    fi
    echo "benchmark ${w}: exit ${status}, $(left) s left"
done

{
    echo
    echo "On CUDA both steps_per_execution=8 rows also set cuda_graph=True (each group of 8 steps replays"
    echo "as one captured graph); the cuda_graph=True row captures single steps."
    echo
    echo "Errors of failed rows (the last lines of each worker's stderr):"
    echo
    echo '```'
    for w in "${workloads[@]}"; do
        [ -s "$log/$w.err" ] && { echo "== $w"; tail -n 25 "$log/$w.err"; }
    done
    echo '```'
    echo
    echo "Total: $((SECONDS - start)) s of a ${budget} s budget."
} >>"$out"
echo "gpu_check.sh: wrote $out in $((SECONDS - start)) s"
