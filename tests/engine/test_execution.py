# SPDX-License-Identifier: Apache-2.0
"""engine/execution.py: the jit step and its eager fallback, what blocks CUDA graph capture, and
CudaGraphGroups' eager paths (the captured path runs in tests/integration/test_gpu.py)."""

import types
import warnings

import pytest
import torch

import torchcompile as tc
from torchcompile.engine import execution
from torchcompile.engine.execution import CudaGraphGroups, capture_blocker, compiled_step, step_function

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no CUDA to exist


class _DynamoError(Exception):
    """Looks like an error torch.compile raises (its module is torch._dynamo's)."""


_DynamoError.__module__ = "torch._dynamo.exc"


class _Model:
    def __init__(self, device=CPU, metrics=None):
        self.module = torch.nn.Linear(2, 1)
        self.device = device
        self.metrics = [tc.metrics.Mean(name="loss")] if metrics is None else metrics


def _compiled(optimizer=None, **overrides):
    settings = dict(
        jit_compile=False,
        first_batch_pending=False,
        optimizer=optimizer if optimizer is not None else torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))]),
        precision=types.SimpleNamespace(scaler=None),
        ddp=None,
        steps_per_execution=2,
    )
    settings.update(overrides)
    return types.SimpleNamespace(**settings)


class _Step:
    """An eager step that records its batches and updates the model's first metric."""

    def __init__(self, model):
        self.model, self.seen = model, []

    def __call__(self, data):
        self.seen.append(data)
        self.model.metrics[0].update_state(torch.tensor(float(data)), sample_weight=1)
        return data * 10


class _FakeCompile:
    """Stands in for torch.compile: the compiled function is ``behaviour(step, data)``."""

    def __init__(self, behaviour):
        self.behaviour, self.calls = behaviour, 0

    def __call__(self, step):
        self.calls += 1
        return lambda data: self.behaviour(step, data)


def _raising(error, after=0):
    """A compiled function that runs the step ``after`` times, then updates the metrics and raises."""
    count = {"n": 0}

    def behaviour(step, data):
        count["n"] += 1
        if count["n"] <= after:
            return step(data)
        step(data)  # half-done work the fallback must undo
        raise error

    return behaviour


# ---------------------------------------------------------------- compiled_step
def test_compiled_step_compiles_once_and_runs_the_compiled_function(monkeypatch):
    fake = _FakeCompile(lambda step, data: ("compiled", step(data)))
    monkeypatch.setattr(torch, "compile", fake)
    model = _Model()
    run = compiled_step(model, _compiled(), _Step(model))
    assert run(1) == ("compiled", 10) and run(2) == ("compiled", 20) and fake.calls == 1


def test_compiled_step_runs_the_first_batch_eagerly(monkeypatch):
    fake = _FakeCompile(lambda step, data: "compiled")
    monkeypatch.setattr(torch, "compile", fake)
    model = _Model()
    assert compiled_step(model, _compiled(first_batch_pending=True), _Step(model))(1) == 10 and fake.calls == 0


def test_compiled_step_falls_back_to_eager_with_a_warning_when_compiling_fails(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(_raising(_DynamoError("graph break\ndetails"))))
    model = _Model()
    run = compiled_step(model, _compiled(), _Step(model))
    with pytest.warns(RuntimeWarning, match=r"could not compile Linear's step.*Received: _DynamoError: graph break$"):
        assert run(3) == 30


def test_compiled_step_warns_once_then_stays_eager(monkeypatch):
    fake = _FakeCompile(_raising(_DynamoError("no")))
    monkeypatch.setattr(torch, "compile", fake)
    model = _Model()
    step = _Step(model)
    run = compiled_step(model, _compiled(), step)
    with pytest.warns(RuntimeWarning):
        run(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run(2) == 20
    assert fake.calls == 1 and step.seen == [1, 1, 2]  # the failed call, its eager rerun, then eager


def test_compiled_step_restores_metric_state_when_the_first_call_fails(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(_raising(_DynamoError("no"))))
    model = _Model()
    run = compiled_step(model, _compiled(), _Step(model))
    with pytest.warns(RuntimeWarning):
        run(4)
    assert float(model.metrics[0].count) == 1.0  # counted once, by the eager rerun


def test_compiled_step_clears_gradients_when_it_falls_back(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(_raising(_DynamoError("no"))))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    optimizer.param_groups[0]["params"][0].grad = torch.ones(1)
    model = _Model()
    with pytest.warns(RuntimeWarning):
        compiled_step(model, _compiled(optimizer), _Step(model))(1)
    assert optimizer.param_groups[0]["params"][0].grad is None


def test_compiled_step_falls_back_on_a_compiler_error_after_working(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(_raising(_DynamoError("recompile failed"), after=1)))
    model = _Model()
    run = compiled_step(model, _compiled(), _Step(model))
    run(1)
    with pytest.warns(RuntimeWarning, match="recompile failed"):
        assert run(2) == 20


def test_compiled_step_raises_a_user_error_after_working(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(_raising(KeyError("label"), after=1)))
    model = _Model()
    run = compiled_step(model, _compiled(), _Step(model))
    run(1)
    with pytest.raises(KeyError, match="label"):
        run(2)


# ---------------------------------------------------------------- step_function
def test_step_function_is_the_eager_step_without_jit(monkeypatch):
    fake = _FakeCompile(lambda step, data: "compiled")
    monkeypatch.setattr(torch, "compile", fake)
    model = _Model()
    run = step_function(model, _compiled(), _Step(model), graphs=False, custom_train_step=False)
    assert run(1) == 10 and fake.calls == 0 and not hasattr(run, "run_group")


def test_step_function_goes_through_torch_compile_with_jit(monkeypatch):
    monkeypatch.setattr(torch, "compile", _FakeCompile(lambda step, data: "compiled"))
    model = _Model()
    assert step_function(model, _compiled(jit_compile=True), _Step(model), graphs=False, custom_train_step=False)(
        1
    ) == ("compiled")


def test_step_function_carries_cuda_graph_groups_of_steps_per_execution():
    model = _Model()
    run = step_function(model, _compiled(steps_per_execution=3), _Step(model), graphs=True, custom_train_step=False)
    assert isinstance(run.run_group, CudaGraphGroups) and run.run_group.size == 3


# ---------------------------------------------------------------- capture_blocker
def test_capture_blocker_names_the_device_on_cpu():
    assert capture_blocker(_Model(CPU), _compiled(), False) == (
        "the model is on cpu, and CUDA graphs need a CUDA device"
    )


def test_capture_blocker_lets_an_eligible_cuda_model_capture():
    assert capture_blocker(_Model(CUDA), _compiled(), False) is None


def _scheduled_sgd():
    schedule = tc.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.9)
    return tc.optimizers.build(tc.optimizers.SGD(learning_rate=schedule), [torch.nn.Parameter(torch.zeros(1))])


def _ema_sgd():
    return tc.optimizers.build(tc.optimizers.SGD(use_ema=True), [torch.nn.Parameter(torch.zeros(1))])


@pytest.mark.parametrize(
    "model, compiled, custom, reason",
    [
        (lambda: _Model(CUDA), lambda: _compiled(), True, "train_step is overridden"),
        (lambda: _Model(CUDA), lambda: _compiled(jit_compile=True), False, "jit_compile=True already compiles"),
        (
            lambda: _Model(CUDA),
            lambda: _compiled(precision=types.SimpleNamespace(scaler=object())),
            False,
            "float16 loss scaling",
        ),
        (
            lambda: _Model(CUDA),
            lambda: _compiled(torch.optim.LBFGS([torch.nn.Parameter(torch.zeros(1))])),
            False,
            "LBFGS has no capturable mode",
        ),
        (lambda: _Model(CUDA), lambda: _compiled(_scheduled_sgd()), False, "learning-rate schedule or EMA"),
        (lambda: _Model(CUDA), lambda: _compiled(_ema_sgd()), False, "learning-rate schedule or EMA"),
        (lambda: _Model(CUDA, metrics=[object()]), lambda: _compiled(), False, "a metric is not a tc metric"),
        (lambda: _Model(CUDA), lambda: _compiled(ddp=object()), False, "several processes"),
    ],
    ids=["custom_train_step", "jit", "scaler", "lbfgs", "schedule", "ema", "foreign_metric", "ddp"],
)
def test_capture_blocker_names_the_reason(model, compiled, custom, reason):
    assert reason in capture_blocker(model(), compiled(), custom)


def test_capture_blocker_accepts_an_optimizer_with_a_capturable_mode():
    compiled = _compiled(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]))
    assert capture_blocker(_Model(CUDA), compiled, False) is None


# ---------------------------------------------------------------- CudaGraphGroups (eager paths)
def _groups(model=None, **overrides):
    model = model or _Model()
    step = _Step(model)
    return CudaGraphGroups(model, _compiled(**overrides), step), step


def test_cuda_graph_groups_run_a_short_group_eagerly():
    groups, step = _groups()
    assert groups([1]) == [10] and step.seen == [1]


def test_cuda_graph_groups_run_the_first_batch_eagerly_before_checking():
    groups, step = _groups(first_batch_pending=True)
    assert groups([1, 2]) == [10, 20] and not groups.checked


def test_cuda_graph_groups_warn_once_and_run_eagerly_when_capture_is_blocked():
    groups, step = _groups()
    with pytest.warns(RuntimeWarning, match=r"run eagerly, because the model is on cpu.*steps_per_execution=2"):
        assert groups([1, 2]) == [10, 20]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert groups([3, 4]) == [30, 40]
    assert groups.failed and step.seen == [1, 2, 3, 4]


def test_count_iterations_advances_keras_iteration_counters():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    optimizer.param_groups[0]["iterations"] = 5
    execution._count_iterations(optimizer, 3)
    assert optimizer.param_groups[0]["iterations"] == 8
