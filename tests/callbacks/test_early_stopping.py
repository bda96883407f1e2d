# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


class DummyModel:
    """Keras' test double: the "weights" are the epoch number they come from."""

    def __init__(self):
        self.stop_training, self.weights, self.metrics = False, -1, []

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.weights = weights


def run(stopper, losses, model=None, stop_at=None):
    stopper.set_model(model or DummyModel())
    stopper.on_train_begin()
    trained = 0
    for epoch, loss in enumerate(losses):
        trained += 1
        stopper.model.weights = epoch
        stopper.on_epoch_end(epoch, logs={stopper.monitor: loss})
        if epoch == stop_at:
            stopper.model.stop_training = True
        if stopper.model.stop_training:
            break
    stopper.on_train_end()
    return trained


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_early_stopping_counts_patience_as_keras(patience):
    stopper = tc.callbacks.EarlyStopping(monitor="loss", patience=patience)
    run(stopper, [10.0, 9.0, 8.0, 9.0, 8.9, 8.8, 8.7, 8.6, 8.5])
    assert stopper.stopped_epoch == max(patience, 1) + 2


def test_early_stopping_restores_best_weights():
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    run(stopper, [0.2, 0.15, 0.1, 0.11, 0.12])
    assert stopper.model.get_weights() == 2


def test_early_stopping_baseline_never_beaten_stops_after_patience_and_restores_best():
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    trained = run(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73])
    assert trained == 5 and stopper.model.get_weights() == 2


def test_early_stopping_restores_best_when_another_callback_stops_training():
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=5, baseline=0.5, restore_best_weights=True)
    trained = run(stopper, [0.9, 0.8, 0.7, 0.71, 0.72, 0.73], stop_at=3)
    assert trained == 4 and stopper.model.get_weights() == 2


def test_early_stopping_waits_start_from_epoch_before_monitoring():
    stopper = tc.callbacks.EarlyStopping(monitor="loss", patience=0, start_from_epoch=3)
    trained = run(stopper, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert trained == 5  # epochs 0-2 ignored; 3 sets best; 4 is worse


def test_early_stopping_min_delta_makes_small_gains_count_as_none():
    stopper = tc.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=0.5)
    trained = run(stopper, [1.0, 0.9, 0.8, 0.7])
    assert trained == 2


def test_early_stopping_max_mode_stops_when_metric_stops_rising():
    stopper = tc.callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    trained = run(stopper, [0.5, 0.6, 0.6, 0.7])
    assert trained == 3


def test_early_stopping_resets_state_on_train_begin():
    stopper = tc.callbacks.EarlyStopping(monitor="loss", patience=3)
    stopper.set_model(DummyModel())
    stopper.best, stopper.wait, stopper.stopped_epoch, stopper.best_weights = 0.1, 3, 5, object()
    stopper.on_train_begin()
    assert (stopper.best, stopper.wait, stopper.stopped_epoch, stopper.best_weights) == (None, 0, 0, None)


def test_early_stopping_missing_monitor_warns_and_continues():
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss")
    stopper.set_model(DummyModel())
    stopper.on_train_begin()
    with pytest.warns(UserWarning, match="Available metrics are: loss"):
        stopper.on_epoch_end(0, {"loss": 1.0})
    assert not stopper.model.stop_training


def test_early_stopping_stops_fit(data):
    model = make_model(metrics=["mse"])
    stopper = tc.callbacks.EarlyStopping(monitor="mse", patience=2, min_delta=100.0)
    history = model.fit(data[0], data[1], epochs=20, verbose=0, callbacks=[stopper])
    assert len(history.epoch) == 3 and stopper.stopped_epoch == 2


def test_early_stopping_restore_best_weights_in_fit_puts_back_the_best_epoch(data):
    model = make_model(optimizer=tc.optimizers.SGD(learning_rate=0.5))
    seen = {}
    record = tc.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.update({e: model.get_weights()}))
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(
        data[0], data[1], validation_data=(data[2], data[3]), epochs=6, verbose=0, callbacks=[record, stopper]
    )
    best = int(np.argmin(history.history["val_loss"]))
    assert stopper.best_epoch == best
    for ours, expected in zip(model.get_weights(), seen[best]):
        np.testing.assert_array_equal(ours, expected)


def test_early_stopping_state_dict_round_trips():
    stopper = tc.callbacks.EarlyStopping(monitor="loss", restore_best_weights=True)
    stopper.best, stopper.wait, stopper.best_epoch = 0.5, 2, 4
    stopper.best_weights = [np.ones((2, 2), np.float32)]
    other = tc.callbacks.EarlyStopping(monitor="loss", restore_best_weights=True)
    other.load_state_dict(stopper.state_dict())
    assert (other.best, other.wait, other.best_epoch) == (0.5, 2, 4)
    np.testing.assert_array_equal(other.best_weights[0], np.ones((2, 2)))
    assert all(isinstance(w, torch.Tensor) for w in stopper.state_dict()["best_weights"])


def test_early_stopping_nan_first_value_does_not_become_best():
    # Keras 3 keeps the NaN as best: an improving run stops and gets the NaN epoch's weights back.
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trained = run(stopper, [float("nan"), 0.5, 0.4, 0.3, 0.2])
    assert trained == 5 and stopper.best == 0.2 and stopper.model.get_weights() == 4


def test_early_stopping_nan_values_count_as_no_improvement():
    stopper = tc.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    trained = run(stopper, [0.5, float("nan"), float("nan"), 0.1])
    assert trained == 3 and stopper.best == 0.5 and stopper.model.get_weights() == 0
