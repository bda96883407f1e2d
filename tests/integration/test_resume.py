# SPDX-License-Identifier: Apache-2.0
"""Crash safety: SIGKILL mid-epoch then resume gives the uninterrupted weights bit for bit;
SIGKILL during checkpoint writes always leaves a loadable file; Ctrl-C leaves fit usable."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.integration import resume_worker
from tests.integration.interrupt import Interrupt
from torchcompile import saving

WORKER = os.path.join(os.path.dirname(__file__), "resume_worker.py")


def train_here(backup_dir, save_freq):
    """The worker's run in this process (one thread, as the worker): a fresh model, resuming if backed up."""
    threads = torch.get_num_threads()
    try:
        return resume_worker.train(str(backup_dir), save_freq)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final weights."""
    return train_here(tmp_path_factory.mktemp("reference") / "backup", "epoch")


def kill_worker_mid_epoch(backup_dir, save_freq, pause_at):
    """Start the worker in a subprocess and SIGKILL it after batch pause_at[1] of epoch pause_at[0]."""
    command = [sys.executable, WORKER, str(backup_dir), os.devnull, "--save-freq", str(save_freq)]
    process = subprocess.Popen(command + ["--pause-at", *map(str, pause_at)], stdout=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if "PAUSED" in line:
                break
        process.send_signal(signal.SIGKILL)  # mid-epoch: batches after the last backup are lost
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("save_freq, pause_at, expected", [("epoch", (2, 5), (2, 0)), (5, (1, 9), (1, 8))])
def test_resume_after_sigkill_mid_epoch_matches_the_uninterrupted_run(
    tmp_path, reference, save_freq, pause_at, expected
):
    backup = tmp_path / "backup"
    kill_worker_mid_epoch(backup, save_freq, pause_at)
    saved = torch.load(backup / "latest.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == expected  # resumes at that epoch, after that many steps
    final = train_here(backup, save_freq)  # started again (here, to spare a second interpreter start)
    assert list(final) == list(reference)
    for key in reference:
        assert torch.equal(final[key], reference[key]), key  # bit for bit
    assert not backup.exists()  # deleted once training finished


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_always_leaves_a_loadable_file(tmp_path):
    path = tmp_path / "ckpt.pt"
    payloads = [{"i": i, "weights": {f"w{k}": torch.full((128, 1024), float(i)) for k in range(4)}} for i in range(8)]
    saving.save_file(payloads[0], path)
    seen = set()
    rng = random.Random(0)
    for kill in range(15):
        pid = os.fork()
        if pid == 0:  # the child only serialises tensors made before the fork, then is killed
            try:
                for i in range(1, 10**9):
                    saving.save_file(payloads[(kill + i) % len(payloads)], path)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.005, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        data = saving.read_file(path, "checkpoint")  # never torn: the old file or the new one
        assert all(torch.equal(w, torch.full_like(w, data["i"])) for w in data["weights"].values())
        seen.add(data["i"])
    assert len(seen) > 1  # the kills landed while checkpoints were being replaced


def test_keyboard_interrupt_propagates_and_leaves_the_model_usable(tmp_path):
    torch.manual_seed(0)
    model = tc.Model(
        torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.2), torch.nn.Linear(4, 1)), device="cpu"
    )
    model.compile(optimizer="adam", loss="mse")
    model.module.eval()
    x, y = np.random.default_rng(0).random((32, 3), dtype=np.float32), np.zeros((32, 1), np.float32)
    backup = tc.callbacks.BackupAndRestore(tmp_path / "b", save_freq=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Interrupt((1, 2)), backup])
    assert not model.module.training and torch.is_grad_enabled()  # mode restored
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["step"] == 2  # the backup was kept
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[backup])
    assert history.epoch == [1, 2] and all(np.isfinite(history.history["loss"]))
