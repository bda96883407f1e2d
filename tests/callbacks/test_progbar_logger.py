"""ProgbarLogger: Keras' formats, a live bar only where lines redraw, plain lines in files, logs read on a timer."""

import contextlib
import itertools
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.callbacks import progbar_logger
from torchcompile.callbacks.progbar_logger import ProgbarLogger, format_eta, format_logs, format_step_time

REPO = pathlib.Path(__file__).resolve().parents[2]


def _fit(verbose, epochs=2, callbacks=None, n=20):
    rng = np.random.default_rng(0)
    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(-1)), device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        rng.normal(size=(n, 3)).astype("float32"),
        rng.integers(0, 2, n),
        batch_size=8,
        epochs=epochs,
        validation_split=0.2,
        verbose=verbose,
        callbacks=callbacks,
    )


def _fit_output(capsys, verbose, epochs=2):
    _fit(verbose, epochs)
    return capsys.readouterr().out


@pytest.fixture
def fake_clock(monkeypatch):
    """time.monotonic advancing 10 ms per call, as the progress bar sees it."""
    ticks = itertools.count()
    monkeypatch.setattr(progbar_logger.time, "monotonic", lambda: 0.01 * next(ticks))


class CountingLogs(dict):
    """Batch logs that count how often they are read (each read is a host sync on a device)."""

    reads = 0

    def items(self):
        CountingLogs.reads += 1
        return super().items()


def _run_epoch(bar, steps):
    CountingLogs.reads = 0
    bar.on_train_begin()
    bar.on_epoch_begin(0)
    for step in range(steps):
        bar.on_train_batch_end(step, CountingLogs(loss=torch.tensor(1.0)))
    bar.on_epoch_end(0, {"loss": 1.0})


def test_format_logs_uses_keras_number_format():
    assert format_logs({"loss": 0.123456, "tiny": 0.0001234}) == "loss: 0.1235 - tiny: 1.2340e-04"


def test_format_logs_reads_device_tensors():
    assert format_logs({"accuracy": torch.tensor(0.965)}) == "accuracy: 0.9650"


@pytest.mark.parametrize(
    "seconds, text",
    [(0.0, "0s/step"), (2.2, "2s/step"), (0.001, "1ms/step"), (0.025, "25ms/step"), (2.5e-4, "250us/step")],
)
def test_format_step_time_uses_keras_units(seconds, text):
    assert format_step_time(seconds) == text


@pytest.mark.parametrize("seconds, text", [(5.4, "5s"), (65, "1:05"), (3725, "1:02:05")])
def test_format_eta_as_keras(seconds, text):
    assert format_eta(seconds) == text


def test_verbose_2_prints_one_keras_line_per_epoch(capsys):
    lines = [line for line in _fit_output(capsys, verbose=2).splitlines() if line.strip()]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert (
        lines[1].startswith("2/2 - ") and "/step - accuracy: " in lines[1] and " - loss: " in lines[1]
    )  # sorted, as Keras
    assert " - accuracy: " in lines[1] and " - val_loss: " in lines[1] and " - val_accuracy: " in lines[1]


def test_verbose_1_shows_the_header_and_the_metrics(capsys):
    out = _fit_output(capsys, verbose=1)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss: " in out and "val_accuracy: " in out


def test_verbose_0_prints_nothing(capsys):
    assert _fit_output(capsys, verbose=0) == ""


def test_single_epoch_has_no_epoch_header_as_keras(capsys):
    assert "Epoch" not in _fit_output(capsys, verbose=2, epochs=1)


def test_fit_into_a_file_writes_plain_lines_without_carriage_returns(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as file, contextlib.redirect_stdout(file):
        _fit("auto", epochs=3, n=200)
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text and "\b" not in text
    lines = text.splitlines()
    assert len(lines) == 6  # an epoch takes < 30 s: its header and Keras' end-of-epoch line, nothing else
    assert lines[0] == "Epoch 1/3" and lines[1].startswith("20/20 - ") and "/step - accuracy: " in lines[1]


def test_lines_in_a_file_come_at_most_once_per_interval(monkeypatch, fake_clock, capsys):
    monkeypatch.setattr(progbar_logger, "live_display", lambda: False)
    bar = ProgbarLogger(line_interval=1.0)
    bar.set_params({"verbose": "auto", "epochs": 1, "steps": 500})
    _run_epoch(bar, 500)  # 5 s of fake time at 1 s per line
    lines = capsys.readouterr().out.splitlines()
    assert 4 <= len(lines) - 1 <= 5 and CountingLogs.reads == len(lines) - 1  # logs read only for a line
    assert lines[0].startswith("100/500 - ETA: 4s - 10ms/step - loss: 1.0000")
    assert lines[-1].startswith("500/500 - 5s - 10ms/step - loss: 1.0000")


def test_live_bar_reads_logs_only_when_the_refresh_interval_is_up(monkeypatch, fake_clock):
    monkeypatch.setattr(progbar_logger, "live_display", lambda: True)
    bar = ProgbarLogger()
    bar.set_params({"verbose": 1, "epochs": 1, "steps": 50})
    _run_epoch(bar, 50)  # 0.5 s of fake time: with a 0.2 s interval, two reads
    assert CountingLogs.reads == 2


def test_live_bar_moves_on_the_timer_and_ends_at_the_last_step(monkeypatch, fake_clock, capsys):
    monkeypatch.setattr(progbar_logger, "live_display", lambda: True)
    bar = ProgbarLogger()
    bar.set_params({"verbose": 1, "epochs": 1, "steps": None})  # the count comes from the steps seen
    _run_epoch(bar, 57)
    out = capsys.readouterr().out
    assert "57/57" in out and "58/" not in out


def test_live_bar_on_a_terminal_shows_keras_step_time(monkeypatch, capsys):
    monkeypatch.setattr(progbar_logger, "live_display", lambda: True)
    _fit(1, epochs=1)
    out = capsys.readouterr().out
    assert "\r" in out and "2/2" in out and "s/step - accuracy: " in out and "0.00s/step" not in out


def test_line_interval_must_not_be_negative():
    with pytest.raises(ValueError, match="line_interval"):
        ProgbarLogger(line_interval=-1)


def test_predict_shows_a_bar_with_verbose_1(capsys):
    tc.Model(torch.nn.Linear(3, 2), device="cpu").predict(np.zeros((5, 3), "float32"), verbose=1)
    assert "1/1" in capsys.readouterr().out


def test_predict_is_silent_with_verbose_0(capsys):
    tc.Model(torch.nn.Linear(3, 2), device="cpu").predict(np.zeros((5, 3), "float32"), verbose=0)
    assert capsys.readouterr().out == ""


NOTEBOOK_WITHOUT_IPYWIDGETS = textwrap.dedent(
    """
    import sys, types, warnings
    warnings.simplefilter("always")
    shell = type("ZMQInteractiveShell", (), {"config": {"IPKernelApp": {}}})
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = shell
    sys.modules.update({"IPython": ipython, "ipykernel": types.ModuleType("ipykernel"),
                        "ipykernel.zmqshell": types.ModuleType("ipykernel.zmqshell"), "ipywidgets": None})
    import numpy as np, torch
    import torchcompile as tc
    model = tc.Model(torch.nn.Linear(3, 1), device="cpu")
    model.compile("sgd", "mse")
    model.fit(np.zeros((16, 3), "float32"), np.zeros((16, 1), "float32"), batch_size=8, verbose="auto")
    """
)


def test_notebook_without_ipywidgets_shows_a_text_bar_and_no_warning():
    run = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_WITHOUT_IPYWIDGETS], cwd=REPO, capture_output=True, timeout=120
    )
    out, err = run.stdout.decode(), run.stderr.decode()  # bytes: text mode would turn \r into \n
    assert run.returncode == 0, err
    assert "IProgress" not in out + err and "Warning" not in err
    assert "\r" in out and "2/2" in out  # a live text bar: notebooks redraw on \r
