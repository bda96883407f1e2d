# SPDX-License-Identifier: Apache-2.0
"""Fitting on in-memory NumPy arrays must not copy the dataset (api.md: one transfer, no per-sample work).

The fit runs in a fresh Python process so that its peak resident set size is its own.
"""

import json
import subprocess
import sys
import textwrap

import pytest

ROWS, FEATURES, BATCH_SIZE = 2_000_000, 16, 4096

CHILD = textwrap.dedent(f"""
    import json, resource, time
    import numpy as np, torch
    from torch import nn
    import torchcompile as tc

    def rss_now():  # bytes resident right now
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def peak():  # bytes, the process's high-water mark since the last reset (VmHWM)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

    def reset_peak():  # Linux: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")

    torch.set_num_threads(1)  # the question is memory; one thread keeps the run short on a busy machine
    rng = np.random.default_rng(0)
    # Filled in chunks: generating it whole makes transient temporaries that would set the
    # high-water mark before fit starts, and hide what fit itself adds.
    x, y = np.empty(({ROWS}, {FEATURES}), np.float32), np.empty(({ROWS}, 1), np.float32)
    for start in range(0, {ROWS}, 100_000):
        x[start:start + 100_000] = rng.standard_normal((100_000, {FEATURES}), dtype=np.float32)
        y[start:start + 100_000] = rng.standard_normal((100_000, 1), dtype=np.float32)
    model = tc.Model(nn.Sequential(nn.Linear({FEATURES}, 32), nn.ReLU(), nn.Linear(32, 1)), device="cpu")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x[:{BATCH_SIZE}], y[:{BATCH_SIZE}], batch_size={BATCH_SIZE}, verbose=0)  # lazy imports, warm-up
    reset_peak()  # a transient peak before fit (imports, data generation) must not hide what fit adds
    before_now, before_peak = rss_now(), peak()
    start = time.perf_counter()
    history = model.fit(x, y, batch_size={BATCH_SIZE}, epochs=1, verbose=0)
    print(json.dumps({{"dataset": x.nbytes + y.nbytes, "before_now": before_now, "before_peak": before_peak,
                      "after_peak": peak(), "seconds": time.perf_counter() - start,
                      "loss": history.history["loss"][0]}}))
""")


@pytest.mark.slow
def test_fit_on_numpy_arrays_keeps_peak_memory_under_twice_the_dataset():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    # Growth of the high-water mark over what was resident before fit: strict, since a
    # transient peak before fit cannot hide growth during it.
    growth = stats["after_peak"] - stats["before_now"]
    print(
        f"dataset {stats['dataset'] / 2**20:.0f} MiB, peak growth during fit {growth / 2**20:.0f} MiB, "
        f"fit {stats['seconds']:.1f} s"
    )
    assert growth < 2 * stats["dataset"], stats
    assert stats["loss"] == stats["loss"]  # finite, not NaN
