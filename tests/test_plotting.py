# SPDX-License-Identifier: Apache-2.0
"""tc.plot_history / History.plot: one subplot per metric, train beside val_, a valid PNG on disk."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.callbacks import History

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTTING_PY = pathlib.Path(tc.__file__).parent / "plotting.py"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(**logs) -> History:
    history = History()
    history.history = {k: list(v) for k, v in logs.items()}
    history.epoch = list(range(len(next(iter(logs.values())))))
    return history


def _assert_valid_png(path: pathlib.Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_plot_history_after_fit_saves_valid_png(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x.sum(axis=1) > 0).astype("float32")
    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Sigmoid()), device="cpu")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    path = tmp_path / "history.png"
    figure = tc.plot_history(history, path)
    _assert_valid_png(path)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "accuracy"]


def test_history_plot_delegates_to_plot_history(tmp_path):
    history = _history(loss=[1.0, 0.5], mae=[0.9, 0.4], val_loss=[1.1, 0.7], val_mae=[1.0, 0.6])
    path = tmp_path / "curves.png"
    figure = history.plot(path)
    _assert_valid_png(path)
    assert [ax.get_title() for ax in figure.axes] == ["loss", "mae"]


def test_plot_history_draws_train_and_validation_curves():
    history = _history(loss=[1.0, 0.5, 0.25], val_loss=[1.1, 0.7, 0.6])
    (ax,) = tc.plot_history(history).axes
    train, validation = ax.get_lines()
    assert train.get_label() == "train" and validation.get_label() == "validation"
    np.testing.assert_allclose(train.get_xdata(), [1, 2, 3])  # epochs count from 1, as Keras prints them
    np.testing.assert_allclose(validation.get_ydata(), [1.1, 0.7, 0.6])


def test_plot_history_without_validation_draws_train_only():
    (ax,) = tc.plot_history(_history(loss=[1.0, 0.5])).axes
    assert [line.get_label() for line in ax.get_lines()] == ["train"]


def test_plot_history_metrics_selects_subplots():
    history = _history(loss=[1.0], accuracy=[0.5], val_loss=[1.2], val_accuracy=[0.4])
    figure = tc.plot_history(history, metrics=["accuracy"])
    assert [ax.get_title() for ax in figure.axes] == ["accuracy"]
    assert len(figure.axes[0].get_lines()) == 2


def test_plot_history_accepts_history_dict():
    figure = tc.plot_history({"loss": [0.3, 0.2], "val_loss": [0.4, 0.3]})
    assert [ax.get_title() for ax in figure.axes] == ["loss"]


def test_plot_history_without_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tc.plot_history(_history(loss=[1.0, 0.5]))
    assert list(tmp_path.iterdir()) == []


def test_plot_history_unknown_metric_raises_with_recorded_names():
    with pytest.raises(ValueError, match=r"\['accuracy'\].*Pick from \['loss'\].*Received: metrics="):
        tc.plot_history(_history(loss=[1.0]), metrics=["accuracy"])


def test_plot_history_empty_history_raises():
    with pytest.raises(ValueError, match="no recorded epochs"):
        tc.plot_history(History())


def test_plot_history_non_history_raises_type_error():
    with pytest.raises(TypeError, match="Received: history of type list"):
        tc.plot_history([1.0, 0.5])


def test_plot_history_without_matplotlib_says_how_to_install(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules makes the import fail
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # A fresh copy of the module, loaded while matplotlib cannot be imported: importing it must work.
    spec = importlib.util.spec_from_file_location("_tc_plotting_without_matplotlib", PLOTTING_PY)
    plotting = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plotting)
    with pytest.raises(ImportError, match=r'pip install "torchcompile\[plot\]"'):
        plotting.plot_history(_history(loss=[1.0]))
