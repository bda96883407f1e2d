# SPDX-License-Identifier: Apache-2.0
"""fit reads device values on the host a small, fixed number of times per epoch, however many
steps the epoch has: with the progress bar on, and with ModelCheckpoint, TerminateOnNaN and
EarlyStopping attached. Not timed: every read of a tensor as a host value is counted."""

import collections
import os
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile.callbacks import progbar_logger
from torchcompile.callbacks.terminate_on_nan import TerminateOnNaN

READS = ("item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy")
EPOCHS = 2
MAX_READS_PER_EPOCH = 8  # the epoch logs, the first batch's input checks, callbacks' epoch-end reads


@pytest.fixture
def count_reads(monkeypatch):
    """Count every read of a tensor's value on the host (and torch.cuda.synchronize on CUDA)."""
    counts = collections.Counter()

    def counting(name, original):
        def read(self, *args, **kwargs):
            # torch.optim reads its step counter, a CPU tensor even for CUDA weights: no device sync.
            if f"torch{os.sep}optim{os.sep}" not in sys._getframe(1).f_code.co_filename:
                counts[name] += 1
            return original(self, *args, **kwargs)

        return read

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    if torch.cuda.is_available():
        synchronize = torch.cuda.synchronize
        monkeypatch.setattr(
            torch.cuda, "synchronize", lambda *a, **k: counts.update(["synchronize"]) or synchronize(*a, **k)
        )
    # The bar reads its logs on a timer; a run this short must not depend on timing.
    monkeypatch.setattr(progbar_logger, "REFRESH_SECONDS", 1e9)
    return counts


def _callbacks(tmp_path):
    return [
        tc.callbacks.ModelCheckpoint(
            str(tmp_path / "best.pt"), monitor="loss", save_best_only=True, save_weights_only=True
        ),
        TerminateOnNaN(),
        tc.callbacks.EarlyStopping(monitor="loss", patience=5),
    ]


def _reads_during_fit(counts, steps, device, verbose=0, callbacks=None, steps_per_execution=1):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(steps * 16, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = tc.Model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), device=device)
    model.compile(
        "adam",
        tc.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    counts.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, batch_size=16, epochs=EPOCHS, verbose=verbose, callbacks=callbacks)
    return sum(counts.values()), dict(counts)


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_fit_reads_a_constant_number_of_values_per_epoch(count_reads, device, verbose, capsys):
    few, seen_few = _reads_during_fit(count_reads, 8, device, verbose)
    many, seen_many = _reads_during_fit(count_reads, 32, device, verbose)
    assert many == few, f"reads grow with the number of steps: {seen_few} for 8 steps, {seen_many} for 32"
    assert few <= MAX_READS_PER_EPOCH * EPOCHS, seen_few


def test_fit_with_checkpoint_terminate_on_nan_and_early_stopping_reads_a_constant_number(
    count_reads, device, tmp_path, monkeypatch, capsys
):
    # On the CPU TerminateOnNaN reads every loss, because there that read costs nothing; test the
    # policy it follows on an accelerator (a device-side flag, read every check_freq batches).
    monkeypatch.setattr(TerminateOnNaN, "_reads_are_free", lambda self, loss: False)
    few, seen_few = _reads_during_fit(count_reads, 8, device, 1, _callbacks(tmp_path / "a"))
    many, seen_many = _reads_during_fit(count_reads, 32, device, 1, _callbacks(tmp_path / "b"))
    assert many == few, f"reads grow with the number of steps: {seen_few} for 8 steps, {seen_many} for 32"
    assert few <= MAX_READS_PER_EPOCH * EPOCHS, seen_few


def test_steps_per_execution_keeps_the_reads_constant(count_reads, device):
    few, _ = _reads_during_fit(count_reads, 8, device, 1, steps_per_execution=4)
    many, _ = _reads_during_fit(count_reads, 32, device, 1, steps_per_execution=4)
    assert many == few


@pytest.mark.gpu
def test_fit_on_cuda_has_no_implicit_sync_per_step(tmp_path):
    """CUDA's own detector: every synchronising call (including implicit ones) warns."""

    def syncs(steps):
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _reads_during_fit(collections.Counter(), steps, torch.device("cuda"), 1, _callbacks(tmp_path))
        finally:
            torch.cuda.set_sync_debug_mode(0)
        return sum("synchroniz" in str(w.message) for w in caught)

    assert syncs(32) == syncs(8)
