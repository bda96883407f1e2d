"""ProgbarLogger: Keras' header and line formats, and logs read on a timer, not every step."""

import numpy as np
import torch

import torchcompile as tc
from torchcompile.callbacks import progbar_logger
from torchcompile.callbacks.progbar_logger import ProgbarLogger, format_logs


def _fit(capsys, verbose, epochs=2):
    rng = np.random.default_rng(0)
    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(-1)), device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        rng.normal(size=(20, 3)).astype("float32"),
        rng.integers(0, 2, 20),
        batch_size=8,
        epochs=epochs,
        validation_split=0.2,
        verbose=verbose,
    )
    return capsys.readouterr().out


def test_format_logs_uses_keras_number_format():
    assert format_logs({"loss": 0.123456, "tiny": 0.0001234}) == "loss: 0.1235 - tiny: 1.2340e-04"


def test_format_logs_reads_device_tensors():
    assert format_logs({"accuracy": torch.tensor(0.965)}) == "accuracy: 0.9650"


def test_verbose_2_prints_one_keras_line_per_epoch(capsys):
    out = _fit(capsys, verbose=2)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("2/2 - ") and "/step - loss: " in lines[1]
    assert " - accuracy: " in lines[1] and " - val_loss: " in lines[1] and " - val_accuracy: " in lines[1]


def test_verbose_1_shows_the_header_and_the_metrics(capsys):
    out = _fit(capsys, verbose=1)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss: " in out and "val_accuracy: " in out


def test_verbose_0_prints_nothing(capsys):
    assert _fit(capsys, verbose=0) == ""


def test_single_epoch_has_no_epoch_header_as_keras(capsys):
    assert "Epoch" not in _fit(capsys, verbose=2, epochs=1)


def test_progress_bar_reads_logs_only_when_the_refresh_interval_is_up(monkeypatch):
    reads = []

    class Logs(dict):
        def items(self):
            reads.append(1)
            return super().items()

    clock = iter([0.0] + [0.01 * i for i in range(1, 100)])
    monkeypatch.setattr(progbar_logger.time, "monotonic", lambda: next(clock))
    bar = ProgbarLogger()
    bar.set_params({"verbose": 1, "epochs": 1, "steps": 50})
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    for step in range(50):  # 0.5 s of fake time: with a 0.2 s interval, two reads
        bar.on_train_batch_end(step, Logs(loss=torch.tensor(1.0)))
    assert len(reads) == 2
    bar.on_epoch_end(0, {"loss": 1.0})


def test_predict_shows_a_bar_with_verbose_1(capsys):
    tc.Model(torch.nn.Linear(3, 2), device="cpu").predict(np.zeros((5, 3), "float32"), verbose=1)
    assert "1/1" in capsys.readouterr().out


def test_predict_is_silent_with_verbose_0(capsys):
    tc.Model(torch.nn.Linear(3, 2), device="cpu").predict(np.zeros((5, 3), "float32"), verbose=0)
    assert capsys.readouterr().out == ""
