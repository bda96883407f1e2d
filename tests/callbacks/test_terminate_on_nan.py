# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


class DeviceLikeTerminateOnNaN(tc.callbacks.TerminateOnNaN):
    """Takes the accelerator path (device-side flag, read every check_freq batches) on the CPU."""

    def _reads_are_free(self, loss):
        return False


def feed(callback, fake_model, losses, epoch=0):
    callback.set_model(fake_model)
    callback.on_epoch_begin(epoch)
    for batch, loss in enumerate(losses):
        callback.on_train_batch_end(batch, {"loss": torch.tensor(loss)})
        if fake_model.stop_training:
            return batch
    callback.on_epoch_end(epoch, {"loss": losses[-1]})
    return None


def test_terminate_on_nan_stops_training_and_names_the_batch(fake_model, capsys):
    stopped_at = feed(tc.callbacks.TerminateOnNaN(), fake_model, [1.0, 2.0, 0.5, float("nan"), 1.0])
    assert fake_model.stop_training and stopped_at == 3
    assert "Batch 3: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_stops_on_infinity(fake_model):
    assert feed(tc.callbacks.TerminateOnNaN(), fake_model, [1.0, float("inf")]) == 1


def test_terminate_on_nan_raise_error_names_the_batch(fake_model):
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        feed(tc.callbacks.TerminateOnNaN(raise_error=True), fake_model, [1.0, 1.0, float("nan")])


def test_terminate_on_nan_device_path_reads_the_flag_every_check_freq_batches(fake_model, capsys):
    stopped_at = feed(DeviceLikeTerminateOnNaN(check_freq=4), fake_model, [1.0, float("nan"), 1.0, 1.0, 1.0])
    assert stopped_at == 3  # noticed at the 4th batch
    assert "Batch 1: Invalid loss, terminating training (noticed at batch 3)" in capsys.readouterr().out


def test_terminate_on_nan_device_path_checks_at_epoch_end(fake_model, capsys):
    assert feed(DeviceLikeTerminateOnNaN(check_freq=100), fake_model, [1.0, 1.0, float("nan")]) is None
    assert fake_model.stop_training
    assert "Batch 2: Invalid loss, terminating training (noticed at the end of the epoch)" in capsys.readouterr().out


def test_terminate_on_nan_device_path_keeps_the_first_bad_batch(fake_model, capsys):
    feed(DeviceLikeTerminateOnNaN(check_freq=3), fake_model, [float("inf"), float("nan"), float("nan")])
    assert "Batch 0:" in capsys.readouterr().out


def test_terminate_on_nan_device_path_flag_resets_each_epoch(fake_model):
    callback = DeviceLikeTerminateOnNaN(check_freq=100)
    feed(callback, fake_model, [1.0, 1.0])
    assert not fake_model.stop_training and callback._unchecked == 0


def test_terminate_on_nan_refuses_a_bad_check_freq():
    with pytest.raises(ValueError, match="check_freq"):
        tc.callbacks.TerminateOnNaN(check_freq=0)


def test_terminate_on_nan_stops_fit_after_one_epoch():
    model = make_model()
    x, y = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], np.float32), np.array([[np.inf], [np.inf]], np.float32)
    history = model.fit(x, y, epochs=3, batch_size=1, verbose=0, callbacks=[tc.callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) == 1 and not np.isfinite(history.history["loss"][0])


def test_terminate_on_nan_raise_error_skips_on_train_end():
    ended = []
    model = make_model()
    x, y = np.ones((2, 3), np.float32), np.array([[1.0], [np.inf]], np.float32)
    with pytest.raises(RuntimeError, match="batch 1"):
        model.fit(
            x,
            y,
            epochs=1,
            batch_size=1,
            verbose=0,
            shuffle=False,
            callbacks=[
                tc.callbacks.LambdaCallback(on_train_end=lambda logs: ended.append(1)),
                tc.callbacks.TerminateOnNaN(raise_error=True),
            ],
        )
    assert not ended


@pytest.mark.parametrize("raise_error", [False, True])
def test_terminate_on_nan_leaves_normal_training_alone(raise_error, data):
    history = make_model().fit(
        data[0], data[1], epochs=2, verbose=0, callbacks=[tc.callbacks.TerminateOnNaN(raise_error=raise_error)]
    )
    assert len(history.history["loss"]) == 2
