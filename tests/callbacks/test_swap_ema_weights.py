"""SwapEMAWeights: validation, evaluate and predict see the EMA weights; training never does."""

import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.callbacks.conftest import make_model


def _ema_model():
    return make_model(optimizer=tc.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5))


def _weights(model):
    return [p.detach().clone() for p in model.module.parameters()]


def _assert_same(first, second):
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_swap_ema_weights_validation_runs_with_the_average(data):
    x, y, vx, vy = data
    model = _ema_model()
    history = model.fit(x, y, batch_size=2, validation_data=(vx, vy), callbacks=[tc.callbacks.SwapEMAWeights()])
    # fit ends by copying the average into the weights; nothing trained after validation.
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(vx, vy, verbose=0), rel=1e-6)
    plain = _ema_model()
    plain_history = plain.fit(x, y, batch_size=2, validation_data=(vx, vy), verbose=0)
    assert plain_history.history["val_loss"][-1] != pytest.approx(history.history["val_loss"][-1], rel=1e-6)


def test_swap_ema_weights_training_never_sees_the_average(data):
    x, y, vx, vy = data
    swapped, plain = _ema_model(), _ema_model()
    callbacks = [tc.callbacks.SwapEMAWeights(swap_on_epoch=True)]
    swapped.fit(x, y, batch_size=2, epochs=3, shuffle=False, validation_data=(vx, vy), callbacks=callbacks, verbose=0)
    plain.fit(x, y, batch_size=2, epochs=3, shuffle=False, validation_data=(vx, vy), verbose=0)
    _assert_same(_weights(swapped), _weights(plain))  # both end with the average (finalize)


def test_swap_ema_weights_on_epoch_shows_the_average_to_later_callbacks(data):
    x, y, _, _ = data
    model, seen = _ema_model(), []
    record = tc.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(_weights(model)))
    model.fit(x, y, batch_size=2, epochs=2, callbacks=[tc.callbacks.SwapEMAWeights(swap_on_epoch=True), record])
    _assert_same(seen[-1], _weights(model))  # the last epoch's end saw the final (average) weights
    averages = [model.optimizer.state[p]["ema"] for p in model.module.parameters()]
    _assert_same(seen[-1], averages)


def test_swap_ema_weights_evaluate_and_predict_swap_back(data):
    x, y, vx, vy = data
    model = _ema_model()
    model.fit(x, y, batch_size=2, verbose=0)
    model.optimizer.state[next(model.module.parameters())]["ema"].add_(1.0)  # average != weights
    before = _weights(model)
    callback = tc.callbacks.SwapEMAWeights()
    with_average = model.predict(vx, verbose=0, callbacks=[callback])
    _assert_same(_weights(model), before)
    assert not np.allclose(with_average, model.predict(vx, verbose=0))
    model.evaluate(vx, vy, verbose=0, callbacks=[callback])
    _assert_same(_weights(model), before)


def test_swap_ema_weights_needs_use_ema(data):
    x, y, vx, vy = data
    model = make_model()
    with pytest.raises(ValueError, match="use_ema=True"):
        model.evaluate(vx, vy, verbose=0, callbacks=[tc.callbacks.SwapEMAWeights()])
