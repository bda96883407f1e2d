# SPDX-License-Identifier: Apache-2.0
"""engine/loop.py: lazy batch logs, modes, and steps grouped by steps_per_execution."""

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.callback_list import CallbackList
from torchcompile.engine.loop import LazyLogs, mode, pythonify_logs, run_epoch


class _Metric:
    def __init__(self, name, value):
        self.name, self.calls, self.value = name, 0, value

    def result(self):
        self.calls += 1
        return torch.tensor(self.value)


def test_lazy_logs_compute_nothing_until_read():
    metric = _Metric("loss", 0.5)
    logs = LazyLogs(lambda: [metric])
    assert metric.calls == 0
    assert float(logs["loss"]) == 0.5 and metric.calls == 1


def test_pythonify_logs_gives_floats_sorted_and_flattened_as_keras():
    logs = pythonify_logs({"loss": torch.tensor(0.25), "compile_metrics": {"acc": torch.tensor(1.0)}})
    assert logs == {"loss": 0.25, "acc": 1.0} and list(logs) == ["acc", "loss"]
    assert all(type(v) is float for v in logs.values())


def test_pythonify_logs_turns_vectors_into_arrays():
    logs = pythonify_logs({"f1": torch.tensor([0.5, 1.0])})
    assert logs["f1"].tolist() == [0.5, 1.0]


def test_mode_restores_training_mode_after_an_exception():
    module = torch.nn.Linear(2, 2).train()
    try:
        with mode(module, training=False):
            assert not module.training and not torch.is_grad_enabled()
            raise KeyError
    except KeyError:
        pass
    assert module.training and torch.is_grad_enabled()


# ---------------------------------------------------------------- steps_per_execution
class _Iterator:
    def __init__(self, n):
        self.n, self.ran_out_of_data = n, False

    def enumerate_epoch(self):
        return iter([(i, (torch.tensor([float(i)]), None, None)) for i in range(self.n)])


class _Model:
    def __init__(self, steps_per_execution=1, stop_at=None):
        self.steps_per_execution, self.stop_at = steps_per_execution, stop_at
        self.stop_training, self.metrics, self.device = False, [], torch.device("cpu")
        self.seen = []

    def prepare_batch(self, batch, mode):
        return batch

    def step(self, batch):
        self.seen.append(int(batch[0]))
        if self.stop_at is not None and self.seen[-1] == self.stop_at:
            self.stop_training = True
        return batch[0]


class _Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("end", batch))


def _run(model, n, mode="train", step_fn=None):
    recorder = _Recorder()
    outputs = run_epoch(
        model, mode, _Iterator(n), CallbackList([recorder]), step_fn or model.step,
        steps_per_execution=model.steps_per_execution,
    )  # fmt: skip
    return recorder.calls, outputs


def test_run_epoch_groups_steps_and_calls_hooks_once_per_group_as_keras():
    calls, _ = _run(_Model(steps_per_execution=3), 7)
    assert calls == [("begin", 0), ("end", 2), ("begin", 3), ("end", 5), ("begin", 6), ("end", 6)]


def test_run_epoch_runs_every_step_of_every_group():
    model = _Model(steps_per_execution=4)
    _run(model, 10)
    assert model.seen == list(range(10))


def test_run_epoch_draws_each_batch_of_a_group_just_before_its_step():
    # Drawing a group's batches ahead kept them all alive at once (8 large batches: slower steps).
    events = []

    class Drawn(_Iterator):
        def enumerate_epoch(self):
            for i in range(self.n):
                events.append(("draw", i))
                yield i, (torch.tensor([float(i)]), None, None)

    model = _Model(steps_per_execution=3)
    run_epoch(model, "train", Drawn(5), CallbackList([]), lambda b: events.append(("step", int(b[0]))),
              steps_per_execution=3)  # fmt: skip
    assert events == [(kind, i) for i in range(5) for kind in ("draw", "step")]


def test_run_epoch_checks_stop_training_after_each_group():
    model = _Model(steps_per_execution=3, stop_at=4)
    _run(model, 9)
    assert model.seen == [0, 1, 2, 3, 4, 5]  # the group that asked to stop finishes, as in Keras


def _run_without_hooks(model, n, mode="train"):
    iterator = _Iterator(n)
    return run_epoch(model, mode, iterator, CallbackList([]), model.step, steps_per_execution=1)


def test_run_epoch_without_hooks_stops_after_the_step_that_asked():
    model = _Model(stop_at=4)
    assert [float(t) for t in _run_without_hooks(model, 9)] == [4.0]  # the last step's logs
    assert model.seen == [0, 1, 2, 3, 4]


def test_run_epoch_without_hooks_predicts_every_batch_and_evaluates_every_batch():
    assert [float(o) for o in _run_without_hooks(_Model(), 5, mode="predict")] == [0, 1, 2, 3, 4]
    model = _Model(stop_at=1)  # only training stops early
    assert [float(t) for t in _run_without_hooks(model, 3, mode="test")] == [2.0] and model.seen == [0, 1, 2]


def test_run_epoch_without_hooks_stops_training_when_the_data_ran_out():
    model, iterator = _Model(), _Iterator(2)
    iterator.ran_out_of_data = True
    run_epoch(model, "train", iterator, CallbackList([]), model.step)
    assert model.stop_training


def test_run_epoch_predict_keeps_every_output_of_a_group():
    _, outputs = _run(_Model(steps_per_execution=4), 6, mode="predict")
    assert [float(o) for o in outputs] == [0, 1, 2, 3, 4, 5]


def test_run_epoch_hands_whole_groups_to_a_group_runner():
    model, groups = _Model(steps_per_execution=4), []

    def step(batch):
        raise AssertionError("the group runner runs the steps")

    step.run_group = lambda batches: groups.append(len(batches)) or [None] * len(batches)
    _run(model, 10, step_fn=step)
    assert groups == [4, 4, 2]


def test_lazy_logs_length_and_truth_compute_nothing():
    metric = _Metric("loss", 0.5)
    logs = LazyLogs(lambda: [metric])
    assert len(logs) == 1 and logs and metric.calls == 0


# ---------------------------------------------------------------- through Model.fit
def _fit(rng, **compile_args):
    x = rng.normal(size=(80, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    torch.manual_seed(0)
    model = tc.Model(torch.nn.Linear(4, 2), device="cpu")
    model.compile(
        "sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], **compile_args
    )
    return model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history


def test_fit_with_steps_per_execution_trains_exactly_like_single_steps():
    assert _fit(np.random.default_rng(0), steps_per_execution=3) == _fit(np.random.default_rng(0))


def test_cuda_graph_on_cpu_warns_once_and_trains_eagerly():
    with pytest.warns(RuntimeWarning, match="CUDA graphs need a CUDA device") as record:
        history = _fit(np.random.default_rng(0), steps_per_execution=2, cuda_graph=True)
    assert sum("cuda_graph" in str(w.message) for w in record) == 1
    assert history == _fit(np.random.default_rng(0))


@pytest.mark.gpu
def test_cuda_graph_groups_train_like_eager_steps_on_cuda():
    def fit(**compile_args):
        torch.manual_seed(0)
        x = torch.randn(256, 4)
        y = (x[:, 0] > 0).long()
        model = tc.Model(
            torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)), device="cuda"
        )
        model.compile(
            "adam", tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"], **compile_args
        )
        forwards = []
        model.module.register_forward_hook(lambda *args: forwards.append(1))
        history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
        return model, history, len(forwards)

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # capture must not fall back here
        graphed, graphed_history, graphed_forwards = fit(steps_per_execution=4, cuda_graph=True)
    _, eager_history, eager_forwards = fit(steps_per_execution=4)
    assert graphed_forwards < eager_forwards  # replayed groups run no Python forward
    np.testing.assert_allclose(graphed_history["loss"], eager_history["loss"], rtol=1e-4)
    assert graphed.optimizer.param_groups[0]["iterations"] == 3 * 16
