# SPDX-License-Identifier: Apache-2.0
"""engine/run.py: one fit/evaluate/predict run on a small fake model (loop.Trainable): the epochs and
validation_freq, Keras' epoch-log rule, prepare's packing, the step-function cache, *_on_batch, and
the argument checks and data helpers around a run. Model-level fits: tests/test_model.py."""

import types

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.callback_list import CallbackList
from torchcompile.core.batches import unpack_x_y_sample_weight
from torchcompile.engine import loop, run
from torchcompile.engine.compile_utils import CompiledLoss
from torchcompile.engine.compiled import compile_model
from torchcompile.engine.resume import TrainingState
from torchcompile.engine.run import Run, check_fit_arguments

CPU = torch.device("cpu")


class _Model:
    """A loop.Trainable: each step adds the batch's mean x to a ``loss`` Mean and records its mode."""

    def __init__(self):
        self.module = torch.nn.Linear(1, 1)
        self.device = CPU
        self.stop_training = False
        self.tracker = tc.metrics.Mean(name="loss")
        self.step_logs = None  # what train/test steps return; None: the lazy metric logs
        self.seen = []  # (step, data, module.training, grad enabled)

    @property
    def metrics(self):
        return [self.tracker]

    def parameters(self):
        return self.module.parameters()

    def to(self, device):
        self.module.to(device)
        return self

    def _step(self, name, data):
        self.seen.append((name, data, self.module.training, torch.is_grad_enabled()))
        x, _, _ = unpack_x_y_sample_weight(data)
        self.tracker.update_state(x.float().mean(), sample_weight=x.shape[0])
        return self.step_logs if self.step_logs is not None else loop.LazyLogs(lambda: self.metrics)

    def train_step(self, data):
        return self._step("train", data)

    def test_step(self, data):
        return self._step("test", data)

    def predict_step(self, data):
        self.seen.append(("predict", data, self.module.training, torch.is_grad_enabled()))
        x, _, _ = unpack_x_y_sample_weight(data)
        return x * 2

    def reset_metrics(self):
        self.tracker.reset_state()

    def get_metrics_result(self):
        return loop.metrics_results(self.metrics)


def _compiled(model, **overrides):
    settings = dict(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss=None,
        jit_compile=False,
        cuda_graph=False,
        steps_per_execution=1,
        step_functions={},
        checks=[],
    )
    settings.update(overrides)
    compiled = types.SimpleNamespace(**settings)
    compiled.request_checks = lambda *labels: compiled.checks.append(labels[0] if labels else None)
    return compiled


class _Epochs(Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.logs, self.stop_at = {}, stop_at

    def on_epoch_end(self, epoch, logs=None):
        self.logs[epoch] = dict(logs)
        if epoch == self.stop_at:
            self.model.stop_training = True


def _run(model=None, compiled="fake", callbacks=(), **kwargs):
    model = model or _Model()
    compiled = _compiled(model) if compiled == "fake" else compiled
    return Run(model, compiled, CallbackList(list(callbacks), add_history=True, model=model), **kwargs)


def _data(model, n=4, batch_size=2, training=False):
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1)
    return run.data_iterator(model, x, torch.zeros(n, 1), None, batch_size, None, training=training)


# ---------------------------------------------------------------- fit
def test_run_fit_runs_the_epochs_from_initial_epoch():
    epochs = _Epochs()
    fit = _run(callbacks=[epochs])
    fit.fit(_data(fit.model, training=True), epochs=3, initial_epoch=1, val=None, validation_freq=1)
    assert list(epochs.logs) == [1, 2]


def test_run_fit_resets_the_metrics_each_epoch():
    epochs = _Epochs()
    fit = _run(callbacks=[epochs])
    fit.fit(_data(fit.model, training=True), epochs=2, initial_epoch=0, val=None, validation_freq=1)
    assert epochs.logs[0] == epochs.logs[1] == {"loss": 1.5}  # the mean of x = 0..3, not accumulated


def test_run_fit_trains_in_train_mode_with_gradients():
    fit = _run()
    fit.model.module.eval()
    fit.fit(_data(fit.model, training=True), epochs=1, initial_epoch=0, val=None, validation_freq=1)
    assert {(name, training, grad) for name, _, training, grad in fit.model.seen} == {("train", True, True)}
    assert not fit.model.module.training  # the mode it had is restored


def test_run_fit_validates_on_the_epochs_validation_freq_names():
    epochs = _Epochs()
    fit = _run(callbacks=[epochs])
    train, val = _data(fit.model, training=True), _data(fit.model)
    fit.fit(train, epochs=4, initial_epoch=0, val=val, validation_freq=[2, 3])
    assert [sorted(logs) for logs in epochs.logs.values()] == [
        ["loss"],
        ["loss", "val_loss"],
        ["loss", "val_loss"],
        ["loss"],
    ]


def test_run_fit_stops_after_the_epoch_that_set_stop_training():
    epochs = _Epochs(stop_at=1)
    fit = _run(callbacks=[epochs])
    fit.model.stop_training = True  # left over from an earlier fit: reset at the start
    fit.fit(_data(fit.model, training=True), epochs=5, initial_epoch=0, val=None, validation_freq=1)
    assert list(epochs.logs) == [0, 1]


def test_run_fit_returns_the_history():
    fit = _run()
    history = fit.fit(_data(fit.model, training=True), epochs=2, initial_epoch=0, val=None, validation_freq=1)
    assert history.history == {"loss": [1.5, 1.5]}


def test_run_fit_hands_a_training_state_to_a_callback_that_takes_one():
    class Backup(Callback):
        def set_training_state(self, state):
            self.state = state

    backup = Backup()
    fit = _run(callbacks=[backup])
    fit.fit(_data(fit.model, training=True), epochs=1, initial_epoch=0, val=None, validation_freq=1)
    assert isinstance(backup.state, TrainingState)


def test_run_fit_starts_at_the_epoch_a_training_state_resumes_from():
    class Resume(Callback):
        def set_training_state(self, state):
            state.resume_from(state.snapshot(0), epoch=2, step=0)

    epochs = _Epochs()
    fit = _run(callbacks=[Resume(), epochs])
    fit.fit(_data(fit.model, training=True), epochs=3, initial_epoch=0, val=None, validation_freq=1)
    assert list(epochs.logs) == [2]


def test_run_fit_requests_the_first_batch_checks_once_per_run():
    fit = _run()
    fit.fit(_data(fit.model, training=True), epochs=3, initial_epoch=0, val=None, validation_freq=1)
    assert len(fit.compiled.checks) == 1


def test_run_fit_trains_a_custom_step_without_an_optimizer():
    # fit used to finalise the EMA of compiled.optimizer unconditionally, and raised on None.
    model = _Model()
    fit = _run(model, compiled=_compiled(model, optimizer=None), overridden=["train_step"])
    history = fit.fit(_data(model, training=True), epochs=1, initial_epoch=0, val=None, validation_freq=1)
    assert history.history == {"loss": [1.5]}


# ---------------------------------------------------------------- evaluate and predict
def test_run_evaluate_returns_python_numbers_of_one_pass():
    evaluation = _run()
    evaluation.model.tracker.update_state(torch.tensor(100.0), sample_weight=1)  # from an earlier run: reset
    assert evaluation.evaluate(_data(evaluation.model)) == {"loss": 1.5}


def test_run_evaluate_runs_in_eval_mode_without_gradients():
    evaluation = _run()
    evaluation.evaluate(_data(evaluation.model))
    assert {(name, training, grad) for name, _, training, grad in evaluation.model.seen} == {("test", False, False)}


def test_run_predict_concatenates_the_batches_as_numpy():
    prediction = _run(compiled=None)
    outputs = prediction.predict(_data(prediction.model, n=5), x=None)
    assert isinstance(outputs, np.ndarray) and outputs[:, 0].tolist() == [0, 2, 4, 6, 8]


def test_run_predict_refuses_data_without_batches():
    empty = types.SimpleNamespace(
        adapter=types.SimpleNamespace(labels=None),
        checked=False,
        ran_out_of_data=False,
        enumerate_epoch=lambda: iter([]),
    )
    with pytest.raises(ValueError, match=r"predict\(\) got no batches from `x`.*x of type list"):
        _run(compiled=None).predict(empty, x=[])


# ---------------------------------------------------------------- _epoch_logs (Keras' rule)
def _epoch_logs(last):
    logs_run = _run()
    logs_run.model.tracker.update_state(torch.tensor(2.0), sample_weight=1)
    return logs_run._epoch_logs(last(logs_run.model) if callable(last) else last)


def test_run_epoch_logs_are_the_metric_results_for_lazy_logs():
    assert _epoch_logs(lambda model: loop.LazyLogs(lambda: model.metrics)) == {"loss": 2.0}


def test_run_epoch_logs_are_the_metric_results_when_the_step_returned_nothing():
    assert _epoch_logs(None) == {"loss": 2.0}  # a CUDA graph replay, or a step that returns no dict


def test_run_epoch_logs_prefer_the_metric_results_over_a_dict_of_the_same_keys():
    assert _epoch_logs({"loss": torch.tensor(9.0)}) == {"loss": 2.0}


def test_run_epoch_logs_are_the_step_logs_when_their_keys_differ():
    assert _epoch_logs({"loss": torch.tensor(9.0), "gap": torch.tensor(1.0)}) == {"loss": 9.0, "gap": 1.0}


def test_run_epoch_logs_keep_an_entry_a_step_added_to_lazy_logs():
    def logs_with_extra(model):
        logs = loop.LazyLogs(lambda: model.metrics)
        logs["extra"] = torch.tensor(1.0)
        return logs

    assert _epoch_logs(logs_with_extra) == {"loss": 2.0, "extra": 1.0}


# ---------------------------------------------------------------- prepare
X, Y, SW = torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2)


@pytest.mark.parametrize(
    "batch, expected",
    [((X, Y, None), (X, Y)), ((X, None, None), X), ((X, Y, SW), (X, Y, SW)), (((X, X), None, None), ((X, X),))],
    ids=["x_y", "x", "x_y_sw", "tuple_x"],
)
def test_run_prepare_packs_the_batch_as_keras(batch, expected):
    packed = _run().prepare(batch, "train")
    assert type(packed) is type(expected) and repr(packed) == repr(expected)


def _sparse_loss():
    loss = CompiledLoss("sparse_categorical_crossentropy")
    loss(torch.tensor([0, 1]), torch.full((2, 3), 1 / 3))
    return loss


def test_run_prepare_checks_sparse_labels_of_data_arriving_per_batch():
    model = _Model()
    per_batch = _run(model, compiled=_compiled(model, loss=_sparse_loss()))
    per_batch.check_labels_per_batch = True
    with pytest.raises(ValueError, match=r"class labels in \[0, 3\)"):
        per_batch.prepare((X, torch.tensor([0, 7]), None), "train")


@pytest.mark.parametrize("mode, per_batch", [("predict", True), ("train", False)])
def test_run_prepare_leaves_labels_unchecked_otherwise(mode, per_batch):
    model = _Model()
    prepared = _run(model, compiled=_compiled(model, loss=_sparse_loss()))
    prepared.check_labels_per_batch = per_batch
    prepared.prepare((X, torch.tensor([0, 7]), None), mode)


# ---------------------------------------------------------------- step_function
@pytest.mark.parametrize("mode", ["train", "test", "predict"])
def test_run_step_function_is_the_model_step_without_compile(mode):
    model = _Model()
    assert _run(model, compiled=None).step_function(mode) == getattr(model, f"{mode}_step")


def test_run_step_function_is_the_model_step_when_eager():
    model = _Model()
    assert _run(model).step_function("train") == model.train_step


def test_run_step_function_is_built_once_per_compile_across_runs():
    model = _Model()
    compiled = _compiled(model, jit_compile=True)
    first = _run(model, compiled=compiled).step_function("train")
    assert _run(model, compiled=compiled).step_function("train") is first and compiled.step_functions == {
        "train": first
    }


def test_run_step_function_uses_cuda_graphs_for_training_only():
    model = _Model()
    compiled = _compiled(model, cuda_graph=True)
    runner = _run(model, compiled=compiled)
    assert hasattr(runner.step_function("train"), "run_group") and runner.step_function("test") == model.test_step


# ---------------------------------------------------------------- on_batch
def test_run_on_batch_resets_the_metrics_first():
    runner = _run()
    runner.model.tracker.update_state(torch.tensor(100.0), sample_weight=1)
    assert runner.on_batch("test", (torch.full((2, 1), 3.0), Y, None), return_dict=True) == {"loss": 3.0}


def test_run_on_batch_requests_the_first_batch_checks_on_a_first_call():
    model = _Model()
    runner = _run(model, compiled=_compiled(model, loss=CompiledLoss("mse")))  # not built yet
    runner.on_batch("train", (X, Y, None), return_dict=False)
    assert runner.compiled.checks == [None]


def test_run_on_batch_returns_a_scalar_for_one_log():
    assert _run().on_batch("train", (torch.full((2, 1), 3.0), Y, None), return_dict=False) == 3.0


def test_run_on_batch_predict_returns_numpy_outputs():
    outputs = _run(compiled=None).on_batch("predict", (torch.ones(2, 1), None, None), return_dict=False)
    assert isinstance(outputs, np.ndarray) and outputs.tolist() == [[2.0], [2.0]]


def test_run_on_batch_lists_other_keys_sorted_as_keras():
    runner = _run()
    runner.model.step_logs = {"zeta": torch.tensor(1.0), "alpha": torch.tensor(2.0)}
    assert runner.on_batch("test", (X, Y, None), return_dict=False) == [2.0, 1.0]


def test_run_on_batch_goes_through_torch_compile_after_the_first_call(monkeypatch):
    # Each call used to request the first-batch checks, so jit_compile=True never compiled *_on_batch.
    compiles = []
    monkeypatch.setattr(torch, "compile", lambda fn: compiles.append(fn) or fn)

    class Fitted(_Model):
        def train_step(self, data):
            x, y = data
            self.compiled.loss(y, self.module(x))  # builds the loss and runs its first-batch checks
            return super().train_step(data)

    model = Fitted()
    model.compiled = compile_model(
        model, CPU, "sgd", "mse", None, None, None, False, 1, True, True, False, None
    )  # jit_compile=True
    runner = Run(model, model.compiled, CallbackList())
    for _ in range(3):
        runner.on_batch("train", (X, Y, None), return_dict=True)
    assert compiles


# ---------------------------------------------------------------- logs_result (through on_batch)
def _on_batch(step_logs, return_dict):
    runner = _run()
    runner.model.step_logs = step_logs
    return runner.on_batch("test", (X, Y, None), return_dict=return_dict)


def test_logs_result_returns_the_dict_when_asked():
    logs = {"loss": torch.tensor(1.0), "mae": torch.tensor(2.0)}
    assert _on_batch(logs, return_dict=True) == {"loss": 1.0, "mae": 2.0}


def test_logs_result_returns_a_scalar_for_one_value():
    assert _on_batch({"gap": torch.tensor(1.0)}, return_dict=False) == 1.0


def test_logs_result_returns_a_list_for_several_values():
    assert _on_batch({"loss": torch.tensor(1.0), "mae": torch.tensor(2.0)}, return_dict=False) == [1.0, 2.0]


# ---------------------------------------------------------------- check_fit_arguments
def _model(compiled=True, optimizer="sgd"):
    weights = [torch.nn.Parameter(torch.zeros(1))]
    return types.SimpleNamespace(compiled=compiled, optimizer=optimizer, parameters=lambda: iter(weights))


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_check_fit_arguments_refuses_an_uncompiled_model(method):
    with pytest.raises(RuntimeError, match=rf"You must call compile\(\) before {method}\(\)"):
        check_fit_arguments(_model(compiled=False), 0, method=method)


@pytest.mark.parametrize("method", ["predict", "predict_on_batch"])
def test_check_fit_arguments_lets_an_uncompiled_model_predict(method):
    check_fit_arguments(_model(compiled=False), 0, method=method)


@pytest.mark.parametrize("verbose", [0, 1, 2, "auto"])
def test_check_fit_arguments_accepts_keras_verbose_values(verbose):
    check_fit_arguments(_model(), verbose)


@pytest.mark.parametrize("verbose", [3, -1, True, "loud", None])
def test_check_fit_arguments_refuses_a_bad_verbose(verbose):
    with pytest.raises(ValueError, match=r"`verbose` must be 0, 1, 2 or 'auto'"):
        check_fit_arguments(_model(), verbose)


@pytest.mark.parametrize("epochs", [2.0, "3", True, None])
def test_check_fit_arguments_refuses_epochs_that_are_not_integers(epochs):
    with pytest.raises(TypeError, match="`epochs` must be an integer"):
        check_fit_arguments(_model(), 0, epochs)


def test_check_fit_arguments_accepts_numpy_integer_epochs():
    check_fit_arguments(_model(), 0, np.int64(3))


@pytest.mark.parametrize("method", ["fit", "train_on_batch"])
def test_check_fit_arguments_refuses_training_without_an_optimizer(method):
    with pytest.raises(ValueError, match=rf"{method}\(\) needs an optimizer"):
        check_fit_arguments(_model(optimizer=None), 0, method=method)


def test_check_fit_arguments_lets_a_custom_train_step_go_without_an_optimizer():
    check_fit_arguments(_model(optimizer=None), 0, custom_train_step=True)


def test_check_fit_arguments_lets_evaluate_go_without_an_optimizer():
    check_fit_arguments(_model(optimizer=None), 0, method="evaluate")


# ---------------------------------------------------------------- data helpers
def test_data_iterator_casts_float_inputs_to_the_module_dtype():
    model = _Model()
    model.module.double()
    iterator = run.data_iterator(model, np.zeros((4, 1), dtype="float32"), np.zeros(4), None, 2, None)
    (_, (x, _, _)), *_ = iterator.enumerate_epoch()
    assert x.dtype == torch.float64


@pytest.mark.parametrize("training", [True, False])
def test_data_iterator_carries_a_partial_pass_over_only_in_training(training):
    assert _data(_Model(), training=training).carry_over is training


def test_fit_iterators_split_off_the_validation_fraction():
    model = _Model()
    x, y = np.zeros((10, 1), dtype="float32"), np.zeros((10, 1), dtype="float32")
    train, val = run.fit_iterators(model, x, y, None, 2, 1, 0, False, None, None, 0.2, None, None, None, 1)
    assert (train.num_steps, val.num_steps) == (4, 1)


def test_fit_iterators_give_no_validation_without_validation_data():
    model = _Model()
    x, y = np.zeros((4, 1), dtype="float32"), np.zeros((4, 1), dtype="float32")
    assert run.fit_iterators(model, x, y, None, 2, 1, 0, False, None, None, 0.0, None, None, None, 1)[1] is None


def test_single_batch_is_all_the_data_as_one_cpu_batch():
    x, y, sw = run.single_batch(_Model(), np.ones((5, 2), dtype="float32"), np.zeros(5), None)
    assert x.shape == (5, 2) and y.shape == (5,) and sw is None and x.device == CPU
