"""tc.Model: wrapping, compile, fit/evaluate/predict semantics and the *_on_batch methods."""

import os
import sys

import numpy as np
import pytest
import torch

import torchcompile as tc


def _classifier(device="cpu"):
    module = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=-1)
    )
    return tc.Model(module, device=device)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(50, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1).astype("int64")


class Recorder(torch.nn.Module):
    """Records, for every forward, the training flag, grad mode and the batch's first column."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), x[:, 0].detach().clone()))
        return torch.softmax(self.linear(x), dim=-1)


def test_model_wraps_the_module_unchanged():
    module = torch.nn.Linear(4, 2)
    model = tc.Model(module, device="cpu")
    x = torch.randn(3, 4)
    assert model.module is module and model.device == torch.device("cpu")
    assert torch.equal(model(x), module(x))


def test_sequential_builds_an_nn_sequential():
    model = tc.Sequential([torch.nn.Linear(4, 2), torch.nn.ReLU()], device="cpu")
    assert isinstance(model.module, torch.nn.Sequential) and len(model.module) == 2


def test_compile_gives_a_real_torch_optimizer_over_the_module_parameters():
    model = _classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, torch.optim.Adam)
    params = {id(p) for group in model.optimizer.param_groups for p in group["params"]}
    assert params == {id(p) for p in model.module.parameters()}
    assert model.optimizer.param_groups[0]["eps"] == 1e-7  # Keras' default, not torch's 1e-8


def test_recompiling_keeps_the_weights(data):
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(*data, epochs=1, verbose=0)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert isinstance(model.optimizer, torch.optim.SGD)
    assert all(torch.equal(before[k], v) for k, v in model.module.state_dict().items())


def test_fit_history_keys_follow_keras_order(data):
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy", "sparse_categorical_accuracy"])
    history = model.fit(*data, epochs=3, validation_split=0.2, verbose=0)
    assert list(history.history) == [  # sorted, as Keras 3 sorts its logs
        "accuracy",
        "loss",
        "sparse_categorical_accuracy",
        "val_accuracy",
        "val_loss",
        "val_sparse_categorical_accuracy",
    ]
    assert history.epoch == [0, 1, 2]
    assert all(len(v) == 3 and all(type(f) is float for f in v) for v in history.history.values())


def test_fit_keeps_the_metric_name_the_user_wrote(data):
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["acc"])
    assert list(model.fit(*data, verbose=0).history) == ["acc", "loss"]


def test_fit_initial_epoch_numbers_epochs_from_there(data):
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy")
    assert model.fit(*data, epochs=4, initial_epoch=2, verbose=0).epoch == [2, 3]


def test_fit_epoch_loss_is_the_batch_size_weighted_mean(data):
    model = _classifier()
    model.compile(tc.optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    history = model.fit(*data, batch_size=16, shuffle=False, verbose=0)  # batches of 16, 16, 16, 2
    with torch.no_grad():
        probs = model.module(torch.from_numpy(data[0]))
        per_sample = -torch.log(probs[torch.arange(50), torch.from_numpy(data[1])].clamp(1e-7, 1 - 1e-7))
    assert history.history["loss"][0] == pytest.approx(per_sample.mean().item(), rel=1e-5)


def test_fit_trains_in_train_mode_and_validates_in_eval_mode_without_grad(data):
    module = Recorder()
    model = tc.Model(module, device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(*data, batch_size=10, epochs=1, validation_split=0.2, verbose=0)  # 4 train, 1 val batch
    assert [(training, grad) for training, grad, _ in module.calls] == [(True, True)] * 4 + [(False, False)]
    assert module.training  # the mode is restored


def test_fit_validation_split_takes_the_last_samples_before_shuffling(data):
    module = Recorder()
    model = tc.Model(module, device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(*data, batch_size=50, epochs=1, validation_split=0.2, shuffle=True, verbose=0)
    validation_column = module.calls[-1][2]
    assert torch.equal(validation_column, torch.from_numpy(data[0][40:, 0]))


def test_fit_shuffle_draws_a_new_permutation_each_epoch(data):
    module = Recorder()
    model = tc.Model(module, device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(*data, batch_size=50, epochs=2, verbose=0)
    first, second = module.calls[0][2], module.calls[1][2]
    assert not torch.equal(first, second) and torch.equal(first.sort().values, second.sort().values)


def test_fit_without_shuffle_keeps_the_order(data):
    module = Recorder()
    model = tc.Model(module, device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(*data, batch_size=50, epochs=1, shuffle=False, verbose=0)
    assert torch.equal(module.calls[0][2], torch.from_numpy(data[0][:, 0]))


def test_fit_learns_a_separable_problem(data):
    model = _classifier()
    model.compile(tc.optimizers.Adam(learning_rate=0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(*data, batch_size=10, epochs=30, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8


def test_evaluate_returns_a_scalar_a_list_or_a_dict(data):
    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(*data, verbose=0), float)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    loss, accuracy = model.evaluate(*data, verbose=0)
    assert model.evaluate(*data, verbose=0, return_dict=True) == {"loss": loss, "accuracy": accuracy}


def test_predict_returns_numpy_including_the_last_partial_batch(data):
    model = _classifier()
    predictions = model.predict(data[0], batch_size=16, verbose=0)
    assert isinstance(predictions, np.ndarray) and predictions.shape == (50, 3)
    np.testing.assert_allclose(predictions, model.module(torch.from_numpy(data[0])).detach().numpy(), rtol=1e-6)


def test_predict_keeps_the_output_structure():
    class TwoHeads(torch.nn.Module):
        def forward(self, x):
            return {"a": x * 2, "b": (x.sum(1), x)}

    outputs = tc.Model(TwoHeads(), device="cpu").predict(np.ones((5, 2), "float32"), batch_size=2, verbose=0)
    assert outputs["a"].shape == (5, 2) and outputs["b"][0].shape == (5,) and outputs["b"][1].shape == (5, 2)


def test_predict_does_not_need_compile(data):
    assert _classifier().predict(data[0], verbose=0).shape == (50, 3)


def test_train_on_batch_takes_one_step_and_returns_loss_and_metrics(data):
    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.module[0].weight.clone()
    loss, accuracy = model.train_on_batch(*data)
    assert not torch.equal(before, model.module[0].weight) and 0 <= accuracy <= 1 and loss > 0
    assert set(model.train_on_batch(*data, return_dict=True)) == {"loss", "accuracy"}


def test_test_on_batch_leaves_the_weights(data):
    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = model.module[0].weight.clone()
    loss = model.test_on_batch(*data)
    assert torch.equal(before, model.module[0].weight) and loss == pytest.approx(model.evaluate(*data, verbose=0))


def test_predict_on_batch_returns_numpy(data):
    assert _classifier().predict_on_batch(data[0][:7]).shape == (7, 3)


def test_torch_loss_module_is_called_in_torch_order(data):
    model = tc.Model(torch.nn.Linear(4, 3), device="cpu")
    model.compile("sgd", torch.nn.CrossEntropyLoss(), metrics=["accuracy"])
    loss, _ = model.evaluate(*data, verbose=0)
    logits = model.module(torch.from_numpy(data[0]))
    expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(data[1]))
    assert loss == pytest.approx(expected.item(), rel=1e-5)


def test_plain_function_loss_and_metric_are_called_in_keras_order(data):
    def squared_error(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean(dim=-1)

    model = tc.Model(torch.nn.Linear(4, 1), device="cpu")
    model.compile("sgd", loss=squared_error, metrics=[squared_error])
    y = data[0][:, :1]
    logs = model.evaluate(data[0], y, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "squared_error"] and logs["loss"] == pytest.approx(logs["squared_error"])


def test_stop_training_from_a_callback_ends_fit_after_that_batch(data):
    class StopAtBatch(tc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    module = Recorder()
    model = tc.Model(module, device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(*data, batch_size=10, epochs=3, callbacks=[StopAtBatch()], verbose=0)
    assert len(module.calls) == 2 and history.epoch == [0]


HOOKS = [
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_test_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
]


def _recording_callback(events):
    def hook(name):
        return lambda self, *args, **kwargs: events.append(name)

    return type("Log", (tc.callbacks.Callback,), {name: hook(name) for name in HOOKS})()


def test_callback_hooks_run_in_keras_order(data):
    events = []
    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(
        data[0][:20],
        data[1][:20],
        batch_size=10,
        epochs=1,
        validation_data=(data[0][:10], data[1][:10]),
        callbacks=[_recording_callback(events)],
        verbose=0,
    )
    assert events[:2] == ["on_train_begin", "on_epoch_begin"]
    assert events[2:6] == ["on_train_batch_begin", "on_train_batch_end"] * 2
    assert events[6:10] == ["on_test_begin", "on_test_batch_begin", "on_test_batch_end", "on_test_end"]
    assert events[10:] == ["on_epoch_end", "on_train_end"]


def test_batch_logs_hold_running_device_tensors(data):
    seen = []

    class Grab(tc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*data, batch_size=25, callbacks=[Grab()], verbose=0)
    assert set(seen[0]) == {"loss", "accuracy"} and isinstance(seen[0]["loss"], torch.Tensor)


def test_fit_reads_no_host_value_per_step(data, monkeypatch):
    """Only the epoch end turns device values into Python numbers; torch's own CPU-side
    optimizer bookkeeping is not ours to count, so only calls made from torchcompile count."""
    model = _classifier()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    calls = []
    for name in ("item", "tolist", "__float__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if os.sep + "torchcompile" + os.sep in caller:
                calls.append(caller)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    model.fit(*data, batch_size=1, epochs=2, shuffle=True, verbose=0)  # 100 steps
    assert len(calls) < 20, calls


def test_fit_ends_with_the_ema_weights_when_use_ema(data):
    model = _classifier()
    model.compile(
        tc.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5), "sparse_categorical_crossentropy"
    )
    model.fit(*data, batch_size=10, epochs=1, verbose=0)
    ema = model.optimizer.state[model.module[0].weight]["ema"]
    assert torch.equal(model.module[0].weight, ema)
