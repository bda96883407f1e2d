# SPDX-License-Identifier: Apache-2.0
import pytest

import torchcompile as tc
from tests.callbacks.conftest import make_model


def test_learning_rate_scheduler_updates_learning_rate(data):
    model = make_model()
    model.fit(
        data[0],
        data[1],
        epochs=1,
        verbose=0,
        callbacks=[tc.callbacks.LearningRateScheduler(lambda step: 1.0 / (2.0 + step))],
    )
    assert tc.optimizers.get_learning_rate(model.optimizer) == 0.5
    assert all(group["lr"] == 0.5 for group in model.optimizer.param_groups)


def test_learning_rate_scheduler_schedule_depends_on_previous_rate(data):
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=0.03))
    model.fit(
        data[0], data[1], epochs=2, verbose=0, callbacks=[tc.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)]
    )
    assert tc.optimizers.get_learning_rate(model.optimizer) == pytest.approx(0.03 / 4)


def test_learning_rate_scheduler_logs_learning_rate_in_history(data):
    model = make_model()
    history = model.fit(
        data[0], data[1], epochs=1, verbose=0, callbacks=[tc.callbacks.LearningRateScheduler(lambda epoch, lr: 0.5)]
    )
    assert type(history.history["learning_rate"][0]) is float and history.history["learning_rate"] == [0.5]


def test_learning_rate_scheduler_refuses_an_optimizer_driven_by_a_schedule(data):
    schedule = tc.optimizers.schedules.PolynomialDecay(initial_learning_rate=0.1, decay_steps=10)
    model = make_model(optimizer=tc.optimizers.Adam(learning_rate=schedule))
    with pytest.raises(TypeError, match="schedule"):
        model.fit(
            data[0],
            data[1],
            epochs=1,
            verbose=0,
            callbacks=[tc.callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)],
        )


def test_learning_rate_scheduler_refuses_a_non_float_rate(fake_model):
    fake_model.optimizer = make_model().optimizer
    callback = tc.callbacks.LearningRateScheduler(lambda epoch, lr: "fast")
    callback.set_model(fake_model)
    with pytest.raises(ValueError, match="should be a float"):
        callback.on_epoch_begin(0)


def test_learning_rate_scheduler_verbose_prints_the_rate(data, capsys):
    model = make_model()
    model.fit(
        data[0],
        data[1],
        epochs=1,
        verbose=0,
        callbacks=[tc.callbacks.LearningRateScheduler(lambda step: 1.0 / (1.0 + step), verbose=1)],
    )
    assert "LearningRateScheduler setting learning rate to 1.0" in capsys.readouterr().out
