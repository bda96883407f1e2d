# SPDX-License-Identifier: Apache-2.0
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.engine.resume import rng_state, set_rng_state


class Interrupt(tc.callbacks.Callback):
    """Raises after batch ``at[1]`` of epoch ``at[0]`` (a crash, in-process)."""

    def __init__(self, at=None):
        super().__init__()
        self.at, self.epoch = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.at is not None and (self.epoch, batch) == tuple(self.at):
            raise RuntimeError("interrupted")


def run(backup_dir, save_freq="epoch", at=None, epochs=3, extra=(), model=None, **backup_kwargs):
    """Dropout + shuffling + Adam + stateful callbacks, from fixed seeds, unless ``model`` is given."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    if model is None:
        torch.manual_seed(0)
        module = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1)
        )
        model = tc.Model(module, device="cpu")
        model.compile(optimizer=tc.optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    torch.manual_seed(1)  # the shuffling and dropout stream
    callbacks = [Interrupt(at), *extra, tc.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq, **backup_kwargs)]
    history = model.fit(x, y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0)
    return model, history


def fresh(seed=0):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
    model = tc.Model(module, device="cpu")
    model.compile(optimizer=tc.optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def assert_same_weights(a, b):
    for (key, x), y in zip(a.module.state_dict().items(), b.module.state_dict().values()):
        assert torch.equal(x, y), key


def test_backup_and_restore_resumes_at_the_interrupted_epoch(tmp_path):
    with pytest.raises(RuntimeError, match="interrupted"):
        run(tmp_path / "b", at=(1, 2))
    assert torch.load(tmp_path / "b" / "latest.pt", weights_only=True)["epoch"] == 1
    _, history = run(tmp_path / "b", model=fresh(seed=5))
    assert history.epoch == [1, 2]


@pytest.mark.parametrize("save_freq, at", [("epoch", (1, 3)), (2, (1, 2)), (3, (2, 0)), (1, (0, 4))])
def test_backup_and_restore_resumed_run_ends_with_the_uninterrupted_weights(tmp_path, save_freq, at):
    reference, ref_history = run(tmp_path / "ref", save_freq=save_freq)
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", save_freq=save_freq, at=at)
    resumed, history = run(tmp_path / "b", save_freq=save_freq, model=fresh(seed=5))
    assert_same_weights(reference, resumed)
    assert history.history["loss"] == ref_history.history["loss"][-len(history.epoch) :]


def test_backup_and_restore_restores_callback_state(tmp_path):
    def stopper():
        return tc.callbacks.EarlyStopping(monitor="loss", patience=10, min_delta=100.0)

    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(2, 1), epochs=4, extra=[stopper()])
    resumed = stopper()
    run(tmp_path / "b", epochs=4, extra=[resumed], model=fresh())
    assert resumed.wait == 3 and resumed.best is not None  # epochs 1..3 did not improve by 100


def test_backup_and_restore_deletes_the_backup_after_training(tmp_path):
    run(tmp_path / "b", epochs=1)
    assert not (tmp_path / "b").exists()


def test_backup_and_restore_keeps_the_backup_when_asked(tmp_path):
    backup = tc.callbacks.BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    fresh().fit(np.ones((4, 4), np.float32), np.ones((4, 1), np.float32), epochs=1, verbose=0, callbacks=[backup])
    assert os.listdir(tmp_path / "b") == ["latest.pt"]


def test_backup_and_restore_keeps_the_backup_when_fit_raises(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(1, 0))
    assert (tmp_path / "b" / "latest.pt").exists()


def test_backup_and_restore_file_loads_with_weights_only(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", save_freq=2, at=(0, 3))
    data = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)
    # Interrupt runs before BackupAndRestore (which puts itself last): the save after batch 3 never happened.
    assert data["format"] == "torchcompile.backup" and (data["epoch"], data["step"]) == (0, 2)
    assert {"weights", "optimizer", "rng_epoch", "rng_step", "metrics", "callbacks"} <= set(data)


def test_backup_and_restore_falls_back_to_the_previous_backup(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(2, 0), extra=[])
    path = tmp_path / "b" / "latest.pt"
    path.with_name("latest.pt.bkp").write_bytes(path.read_bytes())
    path.write_bytes(path.read_bytes()[:100])  # torn
    backup = tc.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True)
    backup.set_model(fresh())
    backup.on_train_begin()
    assert backup.initial_epoch == 2


def test_backup_and_restore_double_checkpoint_keeps_the_previous_file(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(2, 0), double_checkpoint=True)
    latest, previous = (torch.load(tmp_path / "b" / name, weights_only=True) for name in ("latest.pt", "latest.pt.bkp"))
    assert (latest["epoch"], previous["epoch"]) == (2, 1)


def test_backup_and_restore_corrupt_backup_without_a_previous_one_is_a_clear_error(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "latest.pt").write_bytes(b"not a torch file")
    backup = tc.callbacks.BackupAndRestore(tmp_path / "b")
    backup.set_model(fresh())
    with pytest.raises(ValueError, match="corrupt"):
        backup.on_train_begin()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"backup_dir": ""}, "Empty"),
        ({"backup_dir": "d", "save_freq": "often"}, "save_freq"),
        ({"backup_dir": "d", "save_freq": 0}, "save_freq"),
    ],
)
def test_backup_and_restore_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tc.callbacks.BackupAndRestore(**kwargs)


def test_rng_state_round_trips_every_generator():
    import random

    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


def _interrupted_backup(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(1, 2))
    return tmp_path / "b"


def _write_lock(folder, host, pid, age=0.0):
    lock = folder / "owner.lock"
    lock.write_text(json.dumps({"host": host, "pid": pid, "token": "another-run"}))
    stamp = time.time() - age
    os.utime(lock, (stamp, stamp))


def test_backup_and_restore_refuses_a_backup_dir_held_by_a_live_run(tmp_path):
    folder = _interrupted_backup(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(folder, socket.gethostname(), live.pid)
        model = fresh(seed=5)
        before = [t.clone() for t in model.module.state_dict().values()]
        with pytest.raises(RuntimeError, match=f"Another run.*pid {live.pid}"):
            run(folder, model=model)
        assert all(torch.equal(a, b) for a, b in zip(before, model.module.state_dict().values()))
    finally:
        live.kill()
        live.wait()


def test_backup_and_restore_resumes_a_backup_left_by_a_dead_run(tmp_path):
    folder = _interrupted_backup(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(folder, socket.gethostname(), dead.pid)
    _, history = run(folder, model=fresh(seed=5))
    assert history.epoch == [1, 2]


@pytest.mark.parametrize("age, refused", [(0.0, True), (3600.0, False)])
def test_backup_and_restore_lock_from_another_host_counts_while_its_heartbeat_is_fresh(tmp_path, age, refused):
    folder = _interrupted_backup(tmp_path)
    _write_lock(folder, "another-host.example", 4242, age=age)
    if refused:
        with pytest.raises(RuntimeError, match="another-host.example"):
            run(folder, model=fresh(seed=5))
    else:
        assert run(folder, model=fresh(seed=5))[1].epoch == [1, 2]


def test_backup_and_restore_refuses_a_backup_from_a_newer_format(tmp_path):
    folder = _interrupted_backup(tmp_path)
    data = torch.load(folder / "latest.pt", weights_only=True)
    torch.save({**data, "version": 99}, folder / "latest.pt")
    with pytest.raises(ValueError, match="version 99.*up to 2"):
        run(folder, model=fresh(seed=5))


def test_backup_and_restore_refuses_another_optimizer_class_before_changing_weights(tmp_path):
    folder = _interrupted_backup(tmp_path)  # Adam
    model = fresh(seed=5)
    model.compile(optimizer=tc.optimizers.SGD(momentum=0.9), loss="mse")
    before = [t.clone() for t in model.module.state_dict().values()]
    with pytest.raises(ValueError, match="Adam.*SGD"):
        run(folder, model=model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.module.state_dict().values()))


def test_backup_and_restore_falls_back_from_a_foreign_latest_file(tmp_path):
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", at=(2, 0), double_checkpoint=True)
    (tmp_path / "b" / "latest.pt").write_text("epoch,loss\n0,1.0\n")  # a text file in its place
    backup = tc.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True)
    backup.set_model(fresh())
    backup.on_train_begin()
    assert backup.initial_epoch == 1
