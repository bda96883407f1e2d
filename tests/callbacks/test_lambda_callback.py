# SPDX-License-Identifier: Apache-2.0
import collections

import torchcompile as tc
from tests.callbacks.conftest import make_model


def test_lambda_callback_calls_each_given_function(data):
    calls = collections.Counter()
    hooks = [
        "on_train_begin",
        "on_train_end",
        "on_epoch_begin",
        "on_epoch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
    ]
    callback = tc.callbacks.LambdaCallback(**{h: (lambda *a, h=h: calls.update([h])) for h in hooks})
    make_model().fit(data[0], data[1], batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    assert calls == {
        "on_train_begin": 1,
        "on_train_end": 1,
        "on_epoch_begin": 2,
        "on_epoch_end": 2,
        "on_train_batch_begin": 6,
        "on_train_batch_end": 6,
    }


def test_lambda_callback_batch_hook_alone_is_called_by_fit(data):
    losses = []
    callback = tc.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    make_model().fit(data[0], data[1], batch_size=5, epochs=1, verbose=0, callbacks=[callback])
    assert len(losses) == 2


def test_lambda_callback_takes_other_hooks_and_attributes_as_keywords(data):
    seen = []
    callback = tc.callbacks.LambdaCallback(on_test_batch_end=lambda batch, logs: seen.append(batch), note="x")
    model = make_model()
    model.evaluate(data[0], data[1], batch_size=5, verbose=0, callbacks=[callback])
    assert seen == [0, 1] and callback.note == "x"


def test_lambda_callback_accepts_keras2_on_batch_end(data):
    seen = []
    callback = tc.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: seen.append(batch))
    make_model().fit(data[0], data[1], batch_size=5, epochs=1, verbose=0, callbacks=[callback])
    assert seen == [0, 1]
