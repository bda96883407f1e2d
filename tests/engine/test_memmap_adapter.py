# SPDX-License-Identifier: Apache-2.0
"""Memory-mapped arrays are read batch by batch, never copied whole (issue 14, item 3)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from torchcompile.engine import data_adapters as da
from torchcompile.engine import memmap_adapter, validation

CPU = torch.device("cpu")


@pytest.fixture
def mapped(tmp_path):
    x = np.arange(40, dtype=np.float64).reshape(20, 2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(20) % 3)
    return np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r")


def test_memmap_is_streamed_not_converted(mapped):
    adapter = da.get_data_adapter(*mapped, batch_size=8, device=CPU)
    assert isinstance(adapter.data.dataset, memmap_adapter.MemmapBatches) and adapter.num_batches == 3


def test_memmap_batches_equal_the_arrays_in_order(mapped):
    x, y = mapped
    batches = list(da.get_data_adapter(x, y, batch_size=8, device=CPU))
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.from_numpy(np.asarray(x)).float())
    assert torch.cat([b[1] for b in batches]).tolist() == list(np.asarray(y))


def test_memmap_batches_follow_float_dtype(mapped):
    x, _, _ = next(iter(da.get_data_adapter(mapped[0], batch_size=8, device=CPU, float_dtype=torch.float64)))
    assert x.dtype == torch.float64


def test_memmap_shuffle_draws_a_permutation(mapped):
    x, y = mapped
    batches = list(da.get_data_adapter(x, y, batch_size=8, shuffle=True, device=CPU))
    labels = torch.cat([b[0][:, 0] for b in batches]).tolist()
    assert sorted(labels) == list(np.asarray(x)[:, 0]) and labels != sorted(labels)
    for bx, by, _ in batches:  # rows stay paired
        assert (bx[:, 0].long() // 2 % 3 == by).all()


def test_memmap_batches_are_writable_new_memory(mapped):
    x, _, _ = next(iter(da.get_data_adapter(mapped[0], batch_size=8, device=CPU)))
    x.zero_()
    assert mapped[0][1, 1] == 3


def test_memmap_with_in_memory_labels_and_class_weight(mapped):
    adapter = da.get_data_adapter(mapped[0], np.arange(20) % 2, batch_size=20, class_weight={1: 3.0})
    _, y, weights = next(iter(adapter))
    assert weights.tolist() == [3.0 if label else 1.0 for label in y.tolist()]


def test_memmap_validation_split_keeps_views_of_the_mapping(mapped):
    (x, y, _), (vx, vy, _) = validation.split(*mapped, None, 0.25)
    assert memmap_adapter.is_memmap(x) and memmap_adapter.is_memmap(vx) and len(vx) == 5
    assert next(iter(da.get_data_adapter(vx, vy, batch_size=5)))[0][0, 0] == 30


def test_copy_on_write_memmap_is_read_as_an_array(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((4, 2), np.float32))
    adapter = da.get_data_adapter(np.load(tmp_path / "c.npy", mmap_mode="c"), batch_size=2)
    assert isinstance(adapter, da.ArrayDataAdapter)


# Peak RSS while reading a 256 MiB memmap end to end (fit shuffled, predict in order), measured in a
# fresh process after a warm-up fit on in-memory data of the same batch shape.
RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np, torch
    import torchcompile as tc
    torch.set_num_threads(1)
    x = np.load(sys.argv[1], mmap_mode="r")
    y = np.zeros(len(x), dtype=np.float32)
    model = tc.Model(torch.nn.Linear(x.shape[1], 1), device="cpu")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((1024, x.shape[1]), np.float32), np.zeros(1024, np.float32), batch_size=512, verbose=0)
    model.predict(np.zeros((1024, x.shape[1]), np.float32), batch_size=512, verbose=0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model.fit(x, y, batch_size=512, epochs=1, verbose=0)  # shuffled: scattered rows
    model.predict(x, batch_size=512, verbose=0)  # in order: runs of rows
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB and madvise: Linux")
def test_memmap_fit_evaluate_predict_keep_peak_rss_under_a_tenth_of_the_file(tmp_path):
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(65536, 1024)).flush()  # 256 MiB of zeros
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    grown = int(out.stdout.split()[-1])
    assert grown < 0.1 * path.stat().st_size, f"peak RSS grew by {grown / 2**20:.1f} MiB"
