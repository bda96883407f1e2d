# SPDX-License-Identifier: Apache-2.0
import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


def fit(model, data, callback, epochs):
    return model.fit(
        data[0], data[1], validation_data=(data[2], data[3]), callbacks=[callback], epochs=epochs, verbose=0
    )


def test_reduce_lr_on_plateau_reduces_lr_in_fit(data):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.1))
    fit(model, data, tc.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100), 2)
    assert tc.optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.01)


def test_reduce_lr_on_plateau_honors_min_lr(data):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.1))
    callback = tc.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=10, min_lr=0.005)
    fit(model, data, callback, 4)
    assert tc.optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.005)


def test_reduce_lr_on_plateau_cooldown(data):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.1))
    callback = tc.callbacks.ReduceLROnPlateau(patience=1, factor=0.1, monitor="val_loss", min_delta=100, cooldown=2)
    fit(model, data, callback, 4)
    assert tc.optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.001)


def test_reduce_lr_on_plateau_logs_learning_rate_in_history(data):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.1))
    history = fit(model, data, tc.callbacks.ReduceLROnPlateau(patience=1, min_delta=100), 2)
    # As Keras: the rate the epoch trained with, logged before this epoch's reduction.
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1])
    assert tc.optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.01)
    assert all(type(v) is float for v in history.history["learning_rate"])


def test_reduce_lr_on_plateau_refuses_factor_of_one_or_more():
    with pytest.raises(ValueError, match="factor"):
        tc.callbacks.ReduceLROnPlateau(factor=1.0)


def test_reduce_lr_on_plateau_refuses_an_optimizer_driven_by_a_schedule(data):
    schedule = tc.optimizers.schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=10)
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=schedule))
    with pytest.raises(TypeError, match="schedule"):
        fit(model, data, tc.callbacks.ReduceLROnPlateau(patience=1, min_delta=100), 2)


def test_reduce_lr_on_plateau_verbose_prints_the_new_rate(data, capsys):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.1))
    fit(model, data, tc.callbacks.ReduceLROnPlateau(patience=1, min_delta=100, verbose=1), 2)
    assert "ReduceLROnPlateau reducing learning rate to 0.01" in capsys.readouterr().out


def test_reduce_lr_on_plateau_resets_state_on_train_begin(fake_model):
    callback = tc.callbacks.ReduceLROnPlateau(monitor="loss", cooldown=2)
    callback.set_model(fake_model)
    callback.best, callback.wait, callback.cooldown_counter = 0.5, 3, 2
    callback.on_train_begin()
    assert (callback.best, callback.wait, callback.cooldown_counter) == (None, 0, 0)


def test_reduce_lr_on_plateau_state_dict_round_trips():
    callback = tc.callbacks.ReduceLROnPlateau()
    callback.best, callback.wait, callback.cooldown_counter = 0.25, 1, 3
    other = tc.callbacks.ReduceLROnPlateau()
    other.load_state_dict(callback.state_dict())
    assert (other.best, other.wait, other.cooldown_counter) == (0.25, 1, 3)


def test_reduce_lr_on_plateau_nan_first_value_does_not_become_best(fake_model):
    fake_model.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    callback = tc.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=2)
    callback.set_model(fake_model)
    callback.on_train_begin()
    for epoch, value in enumerate([float("nan"), 0.5, 0.4, 0.3, 0.2]):
        callback.on_epoch_end(epoch, {"val_loss": value})
    assert callback.best == 0.2 and fake_model.optimizer.param_groups[0]["lr"] == 0.1
