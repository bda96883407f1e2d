# SPDX-License-Identifier: Apache-2.0
import os

import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


def drive(callback, model, val_losses):
    """Call the hooks as fit does, one epoch per value."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(val_losses):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": value, "val_acc": 1 - value})


def test_model_checkpoint_formats_epoch_and_logs_into_the_filename(tmp_path):
    callback = tc.callbacks.ModelCheckpoint(str(tmp_path / "{epoch:02d}-{val_loss:.2f}.pt"))
    drive(callback, make_model(), [0.5, 0.25])
    assert sorted(os.listdir(tmp_path)) == ["01-0.50.pt", "02-0.25.pt"]


@pytest.mark.parametrize(
    "mode, monitor, values, saved",
    [
        ("min", "val_loss", [0.5, 0.6, 0.4, 0.45], ["01", "03"]),
        ("auto", "val_loss", [0.5, 0.6, 0.4, 0.45], ["01", "03"]),
        ("max", "val_loss", [0.5, 0.6, 0.4, 0.7], ["01", "02", "04"]),
        ("auto", "val_acc", [0.5, 0.6, 0.4, 0.45], ["01", "03"]),
    ],
)  # val_acc = 1 - value
def test_model_checkpoint_save_best_only_follows_the_mode(tmp_path, mode, monitor, values, saved):
    callback = tc.callbacks.ModelCheckpoint(
        str(tmp_path / "{epoch:02d}.pt"), monitor=monitor, mode=mode, save_best_only=True
    )
    drive(callback, make_model(), values)
    assert sorted(name[:2] for name in os.listdir(tmp_path)) == saved


def test_model_checkpoint_initial_value_threshold_must_be_beaten(tmp_path):
    callback = tc.callbacks.ModelCheckpoint(
        str(tmp_path / "{epoch}.pt"), save_best_only=True, initial_value_threshold=0.3
    )
    drive(callback, make_model(), [0.5, 0.2])
    assert os.listdir(tmp_path) == ["2.pt"]


def test_model_checkpoint_save_freq_in_batches_names_the_batch(tmp_path, data):
    callback = tc.callbacks.ModelCheckpoint(
        str(tmp_path / "e{epoch}-b{batch}-{loss:.3f}.pt"), save_freq=2, save_weights_only=True
    )
    make_model().fit(data[0], data[1], batch_size=2, epochs=2, verbose=0, callbacks=[callback])
    names = sorted(os.listdir(tmp_path))
    assert [n.split("-")[0] + "-" + n.split("-")[1] for n in names] == ["e1-b2", "e1-b4", "e2-b1", "e2-b3", "e2-b5"]


def test_model_checkpoint_weights_only_writes_a_plain_state_dict(tmp_path, data):
    model = make_model()
    model.fit(
        data[0],
        data[1],
        epochs=1,
        verbose=0,
        callbacks=[tc.callbacks.ModelCheckpoint(str(tmp_path / "w.pt"), save_weights_only=True)],
    )
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert list(state) == list(model.module.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.module.state_dict().items())


def test_model_checkpoint_full_save_loads_with_load_model(tmp_path, data):
    model = make_model(metrics=["mae"])
    model.fit(data[0], data[1], epochs=2, verbose=0, callbacks=[tc.callbacks.ModelCheckpoint(str(tmp_path / "m.pt"))])
    module = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 1))
    loaded = tc.load_model(tmp_path / "m.pt", module=module, device="cpu")
    assert loaded.initial_epoch == 2
    assert loaded.evaluate(data[0], data[1], verbose=0) == model.evaluate(data[0], data[1], verbose=0)


def test_model_checkpoint_refuses_an_unknown_save_freq():
    with pytest.raises(ValueError, match="save_freq"):
        tc.callbacks.ModelCheckpoint("m.pt", save_freq="sometimes")


def test_model_checkpoint_template_field_missing_from_logs_raises(tmp_path):
    callback = tc.callbacks.ModelCheckpoint(str(tmp_path / "{val_f1:.2f}.pt"))
    with pytest.raises(KeyError, match="Failed to format"):
        drive(callback, make_model(), [0.5])


def test_model_checkpoint_save_best_only_without_the_monitor_warns_and_saves(tmp_path):
    callback = tc.callbacks.ModelCheckpoint(str(tmp_path / "m.pt"), monitor="val_auc", save_best_only=True, mode="max")
    with pytest.warns(UserWarning, match="val_auc"):
        drive(callback, make_model(), [0.5])
    assert os.listdir(tmp_path) == ["m.pt"]


def test_model_checkpoint_refuses_a_folder_as_filepath(tmp_path):
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(IsADirectoryError, match="non-directory"):
        drive(tc.callbacks.ModelCheckpoint(str(tmp_path / "ckpt")), make_model(), [0.5])


def test_model_checkpoint_verbose_says_when_the_monitor_improves(tmp_path, capsys):
    callback = tc.callbacks.ModelCheckpoint(str(tmp_path / "m.pt"), save_best_only=True, verbose=1)
    drive(callback, make_model(), [0.5, 0.7])
    out = capsys.readouterr().out
    assert "val_loss improved from None to 0.50000" in out and "val_loss did not improve from 0.50000" in out


class CountingLogs(dict):
    """Batch logs that count reads (a read of a device tensor is a host sync)."""

    reads = 0

    def __getitem__(self, key):
        CountingLogs.reads += 1
        return super().__getitem__(key)

    def items(self):
        CountingLogs.reads += 1
        return super().items()

    def get(self, key, default=None):
        CountingLogs.reads += 1
        return super().get(key, default)


@pytest.mark.parametrize("callback", ["checkpoint_per_epoch", "checkpoint_every_3", "csv", "backup"])
def test_batch_logs_are_read_only_on_save_steps(tmp_path, callback):
    model = make_model()
    callback = {
        "checkpoint_per_epoch": lambda: tc.callbacks.ModelCheckpoint(str(tmp_path / "m.pt")),
        "checkpoint_every_3": lambda: tc.callbacks.ModelCheckpoint(
            str(tmp_path / "m{batch}.pt"), save_freq=3, save_weights_only=True
        ),
        "csv": lambda: tc.callbacks.CSVLogger(tmp_path / "log.csv"),
        "backup": lambda: tc.callbacks.BackupAndRestore(tmp_path / "b", save_freq=3),
    }[callback]()
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    CountingLogs.reads = 0
    reads_per_batch = []
    for batch in range(6):
        before = CountingLogs.reads
        callback.on_train_batch_end(batch, CountingLogs(loss=torch.tensor(1.0)))
        reads_per_batch.append(CountingLogs.reads - before)
    saves = [2, 5] if isinstance(callback, tc.callbacks.ModelCheckpoint) and callback.save_freq == 3 else []
    assert [i for i, reads in enumerate(reads_per_batch) if reads] == saves


def test_model_checkpoint_save_best_only_nan_first_value_does_not_block_later_saves(tmp_path):
    callback = tc.callbacks.ModelCheckpoint(str(tmp_path / "{epoch:02d}.pt"), save_best_only=True)
    drive(callback, make_model(), [float("nan"), 0.5, float("nan"), 0.4])
    assert sorted(name[:2] for name in os.listdir(tmp_path)) == ["02", "04"]
    assert callback.best == 0.4
