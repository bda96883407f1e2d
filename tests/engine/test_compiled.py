# SPDX-License-Identifier: Apache-2.0
"""engine/compiled.py: compile_model's argument checks and the Compiled object it builds."""

import pytest
import torch

import torchcompile as tc
from torchcompile.engine.compile_utils import CompiledLoss
from torchcompile.engine.compiled import compile_model

CPU = torch.device("cpu")


class _Model:
    """What compile_model reads of a model: its parameters and its module."""

    def __init__(self):
        self.module = torch.nn.Linear(2, 1)

    def parameters(self):
        return self.module.parameters()


def _compile(model=None, **overrides):
    arguments = dict(
        optimizer="sgd",
        loss="mse",
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly=False,
        steps_per_execution=1,
        jit_compile=False,
        auto_scale_loss=True,
        cuda_graph=False,
        dtype_policy=None,
    )
    arguments.update(overrides)
    return compile_model(model or _Model(), CPU, **arguments)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2", None])
def test_compile_model_refuses_bad_steps_per_execution(value):
    with pytest.raises(ValueError, match=r"`steps_per_execution` must be a positive integer.*Received"):
        _compile(steps_per_execution=value)


@pytest.mark.parametrize("value", ["yes", "xla", None])
def test_compile_model_refuses_bad_jit_compile(value):
    with pytest.raises(ValueError, match=r"`jit_compile` must be True, False or 'auto'"):
        _compile(jit_compile=value)


def test_compile_model_refuses_an_unknown_loss_id_at_compile_time():
    with pytest.raises(ValueError, match="Unknown loss 'mese'"):
        _compile(loss="mese")


def test_compile_model_keeps_steps_per_execution():
    assert _compile(steps_per_execution=4).steps_per_execution == 4


def test_compile_model_turns_jit_compile_on():
    compiled = _compile(jit_compile=True)
    assert compiled.jit_compile and compiled.config["jit_compile"] is True


def test_compile_model_runs_jit_compile_auto_eagerly():
    assert _compile(jit_compile="auto").jit_compile is False  # the torch backend's "auto", as in Keras


def test_compile_model_run_eagerly_turns_jit_and_cuda_graph_off():
    compiled = _compile(run_eagerly=True, jit_compile=True, cuda_graph=True)
    assert not compiled.jit_compile and not compiled.cuda_graph
    assert compiled.config["run_eagerly"] is True and compiled.config["jit_compile"] is False


def test_compile_model_builds_the_optimizer_over_the_model_parameters():
    model = _Model()
    compiled = _compile(model, optimizer="adam")
    held = [p for g in compiled.optimizer.param_groups for p in g["params"]]
    assert isinstance(compiled.optimizer, torch.optim.Adam) and held == list(model.parameters())


def test_compile_model_keeps_the_built_optimizer_in_the_config():
    compiled = _compile()
    assert compiled.config["optimizer"] is compiled.optimizer


@pytest.mark.parametrize(
    "optimizer, needs_closure",
    [(torch.optim.LBFGS, True), (torch.optim.SGD, False), ("adam", False), (None, False)],
)
def test_compile_model_needs_closure_only_for_a_closure_optimizer(optimizer, needs_closure):
    assert _compile(optimizer=optimizer).needs_closure is needs_closure


def test_compile_model_builds_no_loss_without_one():
    compiled = _compile(loss=None)
    assert compiled.loss is None and not compiled.first_batch_pending


def test_compile_model_builds_a_loss_tracker_named_loss():
    compiled = _compile()
    assert isinstance(compiled.loss_tracker, tc.metrics.Mean) and compiled.loss_tracker.name == "loss"


def test_compile_model_wraps_nothing_in_one_process():
    assert _compile().ddp is None


def test_compile_model_gives_each_compile_its_own_step_cache():
    first, second = _compile(), _compile()
    first.step_functions["train"] = object()
    assert second.step_functions == {}


# ---------------------------------------------------------------- Compiled
def test_compiled_first_batch_is_pending_until_the_loss_is_built():
    compiled = _compile()
    assert compiled.first_batch_pending
    compiled.loss(torch.zeros(2, 1), torch.ones(2, 1))
    assert not compiled.first_batch_pending


def test_compiled_request_checks_makes_the_next_batch_pending():
    compiled = _compile()
    compiled.loss(torch.zeros(2, 1), torch.ones(2, 1))
    compiled.request_checks(torch.zeros(2, 1))
    assert compiled.first_batch_pending and compiled.loss.checks_pending


def test_compiled_request_checks_without_a_loss_does_nothing():
    compiled = _compile(loss=None)
    compiled.request_checks()
    assert not compiled.first_batch_pending


def test_compiled_tracked_metrics_start_with_the_loss_tracker():
    compiled = _compile(metrics=["mae"])
    assert compiled.tracked_metrics()[0] is compiled.loss_tracker


def test_compiled_tracked_metrics_leave_out_the_loss_tracker_without_a_loss():
    compiled = _compile(loss=None, metrics=["mae"])
    assert compiled.loss_tracker not in compiled.tracked_metrics()


def test_compiled_engine_metrics_list_every_metric_compile_made():
    compiled = _compile(metrics=["mae"])
    y_true, y_pred = (torch.zeros(2, 1), torch.zeros(2, 1)), (torch.ones(2, 1), torch.ones(2, 1))
    compiled.loss(y_true, y_pred)
    compiled.metrics.update_state(y_true, y_pred)
    names = [m.name for m in compiled.engine_metrics()]
    assert names == ["loss", "output_1_loss", "output_2_loss", "output_1_mae", "output_2_mae"]


def test_compiled_engine_metrics_keep_the_loss_tracker_without_a_loss():
    compiled = _compile(loss=None)
    assert compiled.engine_metrics() == [compiled.loss_tracker]


def test_compiled_loss_is_a_compiled_loss_with_the_weights_given():
    compiled = _compile(loss=["mse", "mae"], loss_weights=[1.0, 0.5])
    assert isinstance(compiled.loss, CompiledLoss) and compiled.loss.loss_weights == [1.0, 0.5]


def test_compiled_track_loss_weights_each_batch_by_its_size():
    compiled = _compile()
    compiled.track_loss(torch.tensor(2.0), torch.zeros(3, 2))
    compiled.track_loss(torch.tensor(6.0), torch.zeros(1, 2))
    assert float(compiled.loss_tracker.result()) == 3.0  # (3 × 2 + 1 × 6) / 4, Keras' loss tracker


def test_compiled_track_loss_takes_the_batch_size_from_the_first_input():
    compiled = _compile()
    compiled.track_loss(torch.tensor(1.0), {"mask": None, "image": torch.zeros(5, 2)})
    assert float(compiled.loss_tracker.count) == 5.0


class _SeenPredictions:
    def __init__(self):
        self.y_pred = None

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.y_pred = y_pred


def test_compiled_update_metrics_gives_the_metrics_detached_predictions():
    compiled = _compile()
    compiled.metrics = _SeenPredictions()
    compiled.update_metrics(torch.zeros(2, 1), {"a": torch.ones(2, 1, requires_grad=True)})
    assert not compiled.metrics.y_pred["a"].requires_grad


def test_compiled_update_metrics_casts_predictions_to_float32_under_a_mixed_policy():
    compiled = _compile(dtype_policy="mixed_bfloat16")
    compiled.metrics = _SeenPredictions()
    compiled.update_metrics(torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bfloat16))
    assert compiled.metrics.y_pred.dtype == torch.float32


def test_compiled_apply_moves_the_metric_state():
    compiled = _compile(metrics=["mae"])
    compiled.loss(torch.zeros(2, 1), torch.ones(2, 1))
    compiled.metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    compiled.apply(lambda t: t.double() if t.is_floating_point() else t)
    assert {m.total.dtype for m in compiled.engine_metrics()} == {torch.float64}


def test_compiled_apply_casts_the_optimizer_state_to_its_parameters():
    model = _Model()
    compiled = _compile(model, optimizer="adam")
    model.module(torch.ones(1, 2)).sum().backward()
    compiled.optimizer.step()
    model.module.double()  # as Model._apply: the parameters first, then the compile state
    compiled.apply(lambda t: t.double() if t.is_floating_point() else t)
    assert compiled.optimizer.state[model.module.weight]["exp_avg"].dtype == torch.float64


def test_a_jit_compiled_step_leaves_the_optimizer_step_to_run_eagerly():
    # Traced, the optimizer's step added graphs and guards on per-step host values (Keras' Adam epsilon).
    from torch._dynamo.utils import counters

    def graphs(optimizer):
        torch._dynamo.reset()
        counters.clear()
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
        model = tc.Model(module, device="cpu")
        loss = tc.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, jit_compile=True)
        model.fit(torch.randn(64, 4), torch.randint(0, 3, (64,)), batch_size=16, epochs=2, verbose=0)
        return counters["stats"]["unique_graphs"]

    # One graph before the step's eager part (forward and loss), one after it (the metrics).
    assert graphs("adam") == graphs("sgd") == 2
