# SPDX-License-Identifier: Apache-2.0
"""engine/resume.py: RNG capture and restore, and TrainingState's snapshot and resume (skipping the
done steps, restoring metric and callback state). BackupAndRestore's files: tests/callbacks."""

import random
import types

import numpy as np
import torch

import torchcompile as tc
from torchcompile.engine.compile_utils import CompiledLoss, CompiledMetrics
from torchcompile.engine.resume import TrainingState, rng_state, set_rng_state


class _Model:
    """What TrainingState reads of a model: its metrics, module, device and predict_step."""

    def __init__(self, metrics=None):
        self.module = torch.nn.Linear(1, 1)
        self.device = torch.device("cpu")
        self._metrics = [tc.metrics.Mean(name="loss")] if metrics is None else metrics

    @property
    def metrics(self):
        return self._metrics() if callable(self._metrics) else self._metrics

    def predict_step(self, data):
        return self.module(data[0])


class _Stateful:
    def __init__(self, wait=0):
        self.wait = wait

    def state_dict(self):
        return {"wait": self.wait}

    def load_state_dict(self, state):
        self.wait = state["wait"]


class _OtherStateful(_Stateful):
    pass


class _Backup(_Stateful):
    """A callback that takes the state itself (as BackupAndRestore): never in a snapshot."""

    def set_training_state(self, state):
        pass


_BUILT = types.SimpleNamespace(loss=None, metrics=types.SimpleNamespace(built=True))


def _state(model=None, callbacks=(), compiled=_BUILT):
    return TrainingState(model or _Model(), compiled, types.SimpleNamespace(callbacks=list(callbacks)))


def _epoch(n=4):
    """An epoch's (step, batch) pairs, drawing its order from torch's RNG as a shuffled epoch does."""
    order = torch.randperm(n)
    for step in range(n):
        yield step, (order[step : step + 1].float().reshape(1, 1), torch.zeros(1, 1), None)


def _steps(pairs):
    return [step for step, _ in pairs]


# ---------------------------------------------------------------- rng_state / set_rng_state
def test_set_rng_state_puts_back_every_global_rng():
    saved = rng_state()
    first = (torch.rand(2), np.random.rand(2), random.random())
    set_rng_state(saved)
    torch.testing.assert_close(torch.rand(2), first[0])
    assert np.array_equal(np.random.rand(2), first[1]) and random.random() == first[2]


def test_rng_state_holds_tensors_and_plain_data():
    numpy_state = rng_state()["numpy"]
    assert isinstance(numpy_state[1], torch.Tensor) and all(isinstance(v, (str, int, float)) for v in numpy_state[2:])


# ---------------------------------------------------------------- batches
def test_training_state_batches_pass_every_step_without_a_resume():
    assert _steps(_state().batches(_epoch())) == [0, 1, 2, 3]


def test_training_state_resume_from_sets_the_initial_epoch():
    state = _state()
    state.resume_from(_state().snapshot(0), epoch=2, step=0)
    assert state.initial_epoch == 2


def test_training_state_batches_skip_the_steps_done():
    state = _state()
    state.resume_from(_state().snapshot(0), epoch=1, step=3)
    assert _steps(state.batches(_epoch(5))) == [3, 4]


def test_training_state_batches_skip_only_in_the_first_epoch_after_a_resume():
    state = _state()
    state.resume_from(_state().snapshot(0), epoch=1, step=3)
    list(state.batches(_epoch()))
    assert _steps(state.batches(_epoch())) == [0, 1, 2, 3]


def test_training_state_resume_draws_the_epoch_order_of_the_killed_run():
    killed = _state()
    pairs = killed.batches(_epoch())
    next(pairs), next(pairs)
    snapshot = killed.snapshot(step=2)
    rest = [batch[0] for _, batch in pairs]
    torch.manual_seed(123)  # the restarted process starts elsewhere
    resumed = _state()
    resumed.resume_from(snapshot, epoch=0, step=2)
    assert [batch[0] for _, batch in resumed.batches(_epoch())] == rest


def test_training_state_resume_restores_the_rng_of_the_save_point():
    killed = _state()
    pairs = killed.batches(_epoch())
    next(pairs), next(pairs)
    snapshot = killed.snapshot(step=2)
    after = torch.rand(3)  # e.g. dropout in step 2
    torch.manual_seed(123)
    resumed = _state()
    resumed.resume_from(snapshot, epoch=0, step=2)
    next(resumed.batches(_epoch()))
    torch.testing.assert_close(torch.rand(3), after)


def test_training_state_resume_restores_metric_state():
    saved = tc.metrics.Mean(name="loss")
    saved.update_state(torch.tensor(3.0), sample_weight=2)
    snapshot = _state(_Model([saved])).snapshot(step=2)
    model = _Model([tc.metrics.Mean(name="loss")])
    state = _state(model)
    state.resume_from(snapshot, epoch=0, step=2)
    next(state.batches(_epoch()))
    assert float(model.metrics[0].total) == 6.0 and float(model.metrics[0].count) == 2.0


def test_training_state_resume_builds_compiled_metrics_before_restoring_them():
    saved = CompiledMetrics(["mae"])
    saved.update_state(torch.zeros(2, 1), torch.full((2, 1), 4.0))
    snapshot = _state(_Model(saved.metrics)).snapshot(step=1)
    compiled = types.SimpleNamespace(loss=CompiledLoss("mse"), metrics=CompiledMetrics(["mae"]))
    model = _Model(lambda: compiled.metrics.metrics)  # built lazily, from the first batch, as compile's
    state = _state(model, compiled=compiled)
    state.resume_from(snapshot, epoch=0, step=1)
    next(state.batches(_epoch()))
    assert compiled.loss.built and [m.name for m in model.metrics] == ["mae"]
    assert float(model.metrics[0].result()) == 4.0


def test_training_state_resume_restores_callback_states():
    snapshot = _state(callbacks=[_Stateful(wait=3)]).snapshot(0)
    callback = _Stateful()
    state = _state(callbacks=[callback])
    state.resume_from(snapshot, epoch=1, step=0)
    list(state.batches(_epoch()))
    assert callback.wait == 3


def test_training_state_resume_skips_a_callback_state_of_another_class():
    snapshot = _state(callbacks=[_Stateful(wait=3)]).snapshot(0)
    callback = _OtherStateful()
    state = _state(callbacks=[callback])
    state.resume_from(snapshot, epoch=1, step=0)
    list(state.batches(_epoch()))
    assert callback.wait == 0


# ---------------------------------------------------------------- snapshot
def test_training_state_snapshot_holds_the_stateful_callbacks_state_dicts():
    callbacks = [_Stateful(wait=2), object(), _Backup(wait=9), _OtherStateful(wait=5)]
    snapshot = _state(callbacks=callbacks).snapshot(0)
    assert snapshot["callbacks"] == [["_Stateful", {"wait": 2}], ["_OtherStateful", {"wait": 5}]]


def test_training_state_snapshot_at_an_epoch_end_holds_no_step_state():
    snapshot = _state().snapshot(0)
    assert snapshot["metrics"] is None and snapshot["rng_step"] is None and snapshot["rng_epoch"] is not None


def test_training_state_snapshot_mid_epoch_copies_the_metric_values():
    metric = tc.metrics.Mean(name="loss")
    metric.update_state(torch.tensor(1.0), sample_weight=1)
    snapshot = _state(_Model([metric])).snapshot(step=1)
    metric.update_state(torch.tensor(5.0), sample_weight=1)
    (name, (total, count)), *_ = snapshot["metrics"]
    assert name == "loss" and float(total) == 1.0 and float(count) == 1.0


def test_training_state_snapshot_mid_epoch_holds_the_rng_of_the_epoch_start():
    state = _state()
    pairs = state.batches(_epoch())
    order = [batch[0] for _, batch in (next(pairs), next(pairs))]
    snapshot = state.snapshot(step=2)
    set_rng_state(snapshot["rng_epoch"])
    assert torch.randperm(4)[:2].float().tolist() == [float(o) for o in order]
