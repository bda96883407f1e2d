"""Callback base and CallbackList: hook dispatch, History/progress bar added, batch-hook skipping."""

import types

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.callbacks import Callback, CallbackList, History, ProgbarLogger


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, logs))


def test_callback_list_accepts_a_single_callback_as_keras_does():
    recorder = Recorder()
    callbacks = CallbackList(recorder)
    callbacks.on_epoch_end(0, {"loss": 1.0})
    assert recorder.events == [("epoch_end", 0, {"loss": 1.0})]


def test_callback_list_refuses_objects_that_are_not_callbacks():
    with pytest.raises(TypeError, match="tc.callbacks.Callback"):
        CallbackList([object()])


def test_callback_list_adds_history_and_progress_bar_once():
    history = History()
    callbacks = CallbackList([history], add_history=True, add_progbar=True)
    assert callbacks.history is history
    assert sum(isinstance(cb, ProgbarLogger) for cb in callbacks.callbacks) == 1


def test_callback_list_gives_model_and_params_to_every_callback():
    model, recorder = types.SimpleNamespace(), Recorder()
    CallbackList([recorder], model=model, verbose=0, epochs=3, steps=7)
    assert recorder.model is model and recorder.params == {"verbose": 0, "epochs": 3, "steps": 7}


def test_callback_list_skips_batch_hooks_nobody_overrides():
    assert not CallbackList([Recorder(), History()]).wants_batch_hooks("train")


def test_callback_list_batch_hooks_call_only_the_callbacks_that_have_them():
    class End(Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.seen = (batch, dict(logs))

    class Foreign:  # duck-typed: gets the logs as numbers
        def set_model(self, model):
            pass

        def set_params(self, params):
            pass

        def on_train_batch_end(self, batch, logs=None):
            self.seen = (batch, logs)

    end, foreign = End(), Foreign()
    begin_hook, end_hook = CallbackList([Recorder(), History(), end, foreign]).batch_hooks("train")
    assert begin_hook is None
    end_hook(3, {"loss": torch.tensor(0.5)})
    assert end.seen[0] == 3 and torch.equal(end.seen[1]["loss"], torch.tensor(0.5))
    assert foreign.seen == (3, {"loss": 0.5})
    assert CallbackList([Recorder(), History()]).batch_hooks("test") == (None, None)


def test_callback_list_batch_hook_of_one_callback_hands_it_a_dict():
    class Begin(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.seen = (batch, logs)

    begin = Begin()
    begin_hook, end_hook = CallbackList([begin, History()]).batch_hooks("train")
    begin_hook(2, None)
    assert begin.seen == (2, {}) and end_hook is None


def test_callback_list_sees_the_keras_2_batch_alias():
    class Old(Callback):
        def on_batch_end(self, batch, logs=None):
            self.seen = batch

    old = Old()
    callbacks = CallbackList([old])
    assert callbacks.wants_batch_hooks("train")
    callbacks.on_train_batch_end(4, {})
    assert old.seen == 4


def test_history_appends_epoch_logs_and_sets_model_history():
    model = types.SimpleNamespace(history=None)
    history = History()
    history.set_model(model)
    history.on_train_begin()
    for epoch, loss in enumerate([0.5, 0.25]):
        history.on_epoch_end(epoch, {"loss": loss})
    assert history.history == {"loss": [0.5, 0.25]} and history.epoch == [0, 1] and model.history is history


def test_fit_accepts_a_single_callback(rng):
    import torch

    model = tc.Model(torch.nn.Linear(2, 1), device="cpu")
    model.compile("sgd", "mse")
    recorder = Recorder()
    model.fit(
        rng.normal(size=(4, 2)).astype("float32"),
        rng.normal(size=(4, 1)).astype("float32"),
        epochs=2,
        callbacks=recorder,
        verbose=0,
    )
    assert [e[1] for e in recorder.events] == [0, 1]


def test_callback_list_runs_tqdms_keras_callback_inside_fit_with_number_logs(capsys):
    pytest.importorskip("keras")
    from tqdm.keras import TqdmCallback

    seen = []

    class Numbers(TqdmCallback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)
            super().on_train_batch_end(batch, logs)

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model = tc.Model(torch.nn.Linear(4, 1), device="cpu")
    model.compile("sgd", "mse")
    history = model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0, callbacks=[Numbers(verbose=0)])
    assert len(history.history["loss"]) == 2
    assert len(seen) == 8 and all(isinstance(logs, dict) and type(logs["loss"]) is float for logs in seen)
    assert "2/2" in capsys.readouterr().err  # tqdm's epoch bar ran to the end
