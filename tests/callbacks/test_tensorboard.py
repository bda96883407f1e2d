"""TensorBoard: what it writes, read back with tensorboard's own EventAccumulator."""

import sys

import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _read(folder):
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def _scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _fit(log_dir, data, epochs=2, **kwargs):
    x, y, vx, vy = data
    model = make_model(loss="mse", metrics=["mae"])
    board = tc.callbacks.TensorBoard(log_dir, **kwargs)
    history = model.fit(x, y, batch_size=2, epochs=epochs, validation_data=(vx, vy), callbacks=[board], verbose=0)
    return model, history.history


def test_tensorboard_epoch_scalars_equal_history(tmp_path, data):
    _, history = _fit(tmp_path, data)
    train, validation = _read(tmp_path / "train"), _read(tmp_path / "validation")
    for tag, key in [("epoch_loss", "loss"), ("epoch_mae", "mae")]:
        assert [s for s, _ in _scalars(train, tag)] == [0, 1]
        np.testing.assert_allclose([v for _, v in _scalars(train, tag)], history[key], rtol=1e-6)
        np.testing.assert_allclose([v for _, v in _scalars(validation, tag)], history[f"val_{key}"], rtol=1e-6)
    assert _scalars(train, "epoch_learning_rate") == [(0, pytest.approx(0.01)), (1, pytest.approx(0.01))]
    evaluation = _scalars(validation, "evaluation_loss_vs_iterations")  # Keras: against optimizer.iterations
    assert [s for s, _ in evaluation] == [5, 10]
    np.testing.assert_allclose([v for _, v in evaluation], history["val_loss"], rtol=1e-6)


def test_tensorboard_batch_scalars_every_update_freq_batches(tmp_path, data):
    _, history = _fit(tmp_path, data, update_freq=2)
    batch_loss = _scalars(_read(tmp_path / "train"), "batch_loss")
    assert [s for s, _ in batch_loss] == [2, 4, 6, 8, 10]  # global batch numbers, counted from 1 (Keras)
    assert batch_loss[-1][1] == pytest.approx(history["loss"][-1], rel=1e-6)  # the running mean at the last batch


class CountingLogs(dict):
    reads = 0

    def items(self):
        CountingLogs.reads += 1
        return super().items()


@pytest.mark.parametrize("update_freq, reads", [("epoch", 0), ("batch", 9), (3, 3)])
def test_tensorboard_reads_batch_logs_only_on_logged_batches(tmp_path, fake_model, update_freq, reads):
    board = tc.callbacks.TensorBoard(tmp_path, update_freq=update_freq, write_graph=False)
    board.set_model(fake_model)
    board.on_train_begin()
    board.on_epoch_begin(0)
    CountingLogs.reads = 0
    for batch in range(9):
        board.on_train_batch_begin(batch)
        board.on_train_batch_end(batch, CountingLogs(loss=torch.tensor(1.0)))
    assert CountingLogs.reads == reads
    board.on_train_end()


def test_tensorboard_histograms_every_histogram_freq_epochs(tmp_path, data):
    _fit(tmp_path, data, epochs=3, histogram_freq=2, write_images=True)
    train = _read(tmp_path / "train")
    assert {"0/weight/histogram", "0/bias/histogram", "1/weight/histogram"} <= set(train.Tags()["histograms"])
    assert [e.step for e in train.Histograms("0/weight/histogram")] == [0, 2]
    assert "0/weight/image" in train.Tags()["images"]


def test_tensorboard_writes_the_traced_graph(tmp_path, data):
    _fit(tmp_path, data, epochs=1)
    assert _read(tmp_path / "train").Tags()["graph"]


class KeywordModule(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = torch.nn.Linear(3, 1)

    def forward(self, features):
        return self.dense(features)


def test_tensorboard_skips_a_graph_it_cannot_trace_with_a_warning(tmp_path, data):
    x, y, _, _ = data
    model = tc.Model(KeywordModule(), device="cpu")
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="graph of KeywordModule is not written"):
        history = model.fit({"features": x}, y, batch_size=5, callbacks=[tc.callbacks.TensorBoard(tmp_path)], verbose=0)
    assert _scalars(_read(tmp_path / "train"), "epoch_loss")[0][1] == pytest.approx(history.history["loss"][0])


def test_tensorboard_profile_batch_writes_a_torch_profiler_trace(tmp_path, data):
    _fit(tmp_path, data, epochs=1, profile_batch=(2, 3), write_graph=False)
    traces = list((tmp_path / "train").glob("*.pt.trace.json"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0


def test_tensorboard_evaluate_alone_writes_the_evaluation(tmp_path, data):
    x, y, vx, vy = data
    model = make_model()
    loss = model.evaluate(vx, vy, callbacks=[tc.callbacks.TensorBoard(tmp_path)], verbose=0)
    assert _scalars(_read(tmp_path / "validation"), "evaluation_loss_vs_iterations") == [(0, pytest.approx(loss))]


def test_tensorboard_only_rank_zero_writes(tmp_path, data, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    _fit(tmp_path / "logs", data, epochs=1, histogram_freq=1, profile_batch=1)
    assert not (tmp_path / "logs").exists()


def test_tensorboard_without_the_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r"torchcompile\[tensorboard\]"):
        tc.callbacks.TensorBoard()


@pytest.mark.parametrize("kwargs", [{"update_freq": 0}, {"update_freq": "step"}, {"profile_batch": (3, 2)}])
def test_tensorboard_refuses_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        tc.callbacks.TensorBoard(**kwargs)


@pytest.mark.parametrize("profile_batch, expected", [(0, (0, 0)), (5, (5, 5)), ((2, 4), (2, 4)), ("2,4", (2, 4))])
def test_tensorboard_profile_batch_as_keras_reads_it(profile_batch, expected):
    board = tc.callbacks.TensorBoard(profile_batch=profile_batch)
    assert (board._start_batch, board._stop_batch) == expected
