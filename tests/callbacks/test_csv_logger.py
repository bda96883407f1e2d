# SPDX-License-Identifier: Apache-2.0
import csv
import io
import os
import re

import numpy as np
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


def fit(data, callback, epochs=1, **kwargs):
    return make_model(metrics=["mse"]).fit(
        data[0],
        data[1],
        batch_size=4,
        validation_data=(data[2], data[3]),
        callbacks=[callback],
        epochs=epochs,
        verbose=0,
        **kwargs,
    )


def test_csv_logger_uses_the_separator(tmp_path, data):
    path = tmp_path / "log.tsv"
    fit(data, tc.callbacks.CSVLogger(path, separator="\t"))
    assert csv.Sniffer().sniff(path.read_text()).delimiter == "\t"


def test_csv_logger_append_keeps_one_header(tmp_path, data):
    path = tmp_path / "log.tsv"
    fit(data, tc.callbacks.CSVLogger(path, separator="\t"))
    callback = tc.callbacks.CSVLogger(path, separator="\t", append=True)
    fit(data, callback)
    fit(data, callback, epochs=2)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and all(line.count("\t") == 4 for line in lines)
    assert len(re.findall("epoch", " ".join(lines))) == 1


def test_csv_logger_columns_are_epoch_then_sorted_keys(tmp_path, data):
    path = tmp_path / "log.csv"
    history = fit(data, tc.callbacks.CSVLogger(path), epochs=2)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == ["epoch", "loss", "mse", "val_loss", "val_mse"]
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert [float(r["loss"]) for r in rows] == history.history["loss"]


def test_csv_logger_writes_na_where_validation_did_not_run(tmp_path, data):
    path = tmp_path / "log.csv"
    history = fit(data, tc.callbacks.CSVLogger(path), epochs=5, validation_freq=3)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["val_loss"] for r in rows] == ["NA", "NA", str(history.history["val_loss"][0]), "NA", "NA"]


def test_csv_logger_without_append_starts_a_new_file(tmp_path, data):
    path = tmp_path / "log.csv"
    path.write_text("old contents\n")
    fit(data, tc.callbacks.CSVLogger(path))
    assert "old contents" not in path.read_text()


def test_csv_logger_writes_vectors_and_tensors(tmp_path, fake_model):
    path = tmp_path / "log.csv"
    callback = tc.callbacks.CSVLogger(path)
    callback.set_model(fake_model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"f1": np.array([0.5, 1.0]), "loss": torch.tensor(0.25)})
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["epoch", "f1", "loss", "val_f1", "val_loss"]
    assert rows[1][:3] == ["0", '"[0.5, 1.0]"', "0.25"]


def test_csv_logger_logs_nan_with_terminate_on_nan(tmp_path):
    path = tmp_path / "log.csv"
    x, y = np.ones((4, 3), np.float32), np.full((4, 1), np.inf, np.float32)
    history = make_model().fit(
        x, y, batch_size=2, epochs=5, verbose=0, callbacks=[tc.callbacks.TerminateOnNaN(), tc.callbacks.CSVLogger(path)]
    )
    rows = [r for r in csv.reader(io.StringIO(path.read_text())) if r]
    assert len(history.epoch) == 1 and rows[-1][1] in ("nan", "inf")


def test_csv_logger_leaves_no_temporary_files(tmp_path, data):
    fit(data, tc.callbacks.CSVLogger(tmp_path / "log.csv"), epochs=3)
    assert os.listdir(tmp_path) == ["log.csv"]


def test_csv_logger_append_onto_other_columns_keeps_one_valid_table(tmp_path, fake_model):
    path = tmp_path / "log.csv"
    path.write_text("epoch,acc,loss\n0,0.5,1.0\n")
    callback = tc.callbacks.CSVLogger(path, append=True)
    callback.set_model(fake_model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 0.75, "lr": 0.01, "val_loss": 0.8, "val_lr": 0.01})
    callback.on_epoch_end(1, {"loss": 0.5, "lr": 0.01, "val_loss": 0.6, "val_lr": 0.01})
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["epoch", "acc", "loss", "lr", "val_loss", "val_lr"]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert rows[1] == ["0", "0.5", "1.0", "NA", "NA", "NA"]
    assert rows[2] == ["0", "NA", "0.75", "0.01", "0.8", "0.01"]
    assert rows[3][:3] == ["1", "NA", "0.5"]


def test_csv_logger_append_with_fewer_columns_keeps_the_header(tmp_path, fake_model):
    path = tmp_path / "log.csv"
    path.write_text("epoch,acc,loss,val_acc,val_loss\n0,0.5,1.0,0.4,1.1")  # no final newline
    callback = tc.callbacks.CSVLogger(path, append=True)
    callback.set_model(fake_model)
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 0.75, "val_loss": 0.8})
    assert path.read_text().splitlines() == [
        "epoch,acc,loss,val_acc,val_loss",
        "0,0.5,1.0,0.4,1.1",
        "0,NA,0.75,NA,0.8",
    ]
