# SPDX-License-Identifier: Apache-2.0
"""The spec base and its step hooks, for every id: shared Keras options, state_dict, configs."""

import copy
import functools
import io

import numpy as np
import pytest
import torch

from tests.optimizers import trajectory
from torchcompile import optimizers

IDS = optimizers.ALL_OBJECTS.names()

# Keras' arguments every optimizer takes, applied by step_hooks.py around torch's step. Options
# that do not exclude each other share a run, so each id sees every option in three trajectories.
COMMON_OPTIONS = {
    "weight_decay+clipnorm": ({"weight_decay": 0.05, "clipnorm": 0.5}, False),
    "clipvalue+ema_overwrite": (
        {"clipvalue": 0.1, "use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 7},
        False,
    ),
    "global_clipnorm+ema_finalize": ({"global_clipnorm": 0.5, "use_ema": True, "ema_momentum": 0.9}, True),
}
# float64, epsilon out of the way where only its placement differs (see test_builtin.py):
# measured <= 1e-7 of the distance travelled, 1e-6 allowed.
RULE_TOLERANCE = 1e-6


@pytest.mark.keras
@pytest.mark.parametrize("options", sorted(COMMON_OPTIONS))
@pytest.mark.parametrize("name", IDS)
def test_optimizer_common_options_match_keras(name, options, rng, keras_float64):
    kwargs, finalize = COMMON_OPTIONS[options]
    difference = trajectory.difference_from_keras(name, kwargs, rng, finalize)
    assert difference <= RULE_TOLERANCE


@pytest.mark.keras
@pytest.mark.parametrize("name", ["sgd", "rmsprop"])
def test_optimizer_momentum_follows_keras_when_rate_is_set_midway(name, rng, keras_float64):
    # ReduceLROnPlateau-style change: Keras' `optimizer.learning_rate = x`, our set_learning_rate.
    keras = keras_float64
    w0, grads = trajectory.weights_and_grads(rng)
    kwargs = {"momentum": 0.9, "learning_rate": 0.05}
    params = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    ours = trajectory.spec(name, kwargs).build(params)
    theirs = getattr(keras.optimizers, trajectory.KERAS_CLASS[name])(**kwargs)
    variables = [keras.Variable(w) for w in w0]
    for half, rate in ((grads[:25], 0.05), (grads[25:], 0.005)):
        optimizers.set_learning_rate(ours, rate)
        theirs.learning_rate = rate
        trajectory.run_ours(ours, params, half)
        for step in half:
            theirs.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
    keras_w = [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]
    ours_w = [p.detach().numpy() for p in params]
    assert trajectory.relative_difference(ours_w, keras_w, w0) <= RULE_TOLERANCE


def _save_load(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # what model.save/tc.load_model will do


STATEFUL = {
    "learning_rate": optimizers.schedules.ExponentialDecay(0.01, 10, 0.5),
    "weight_decay": 0.01,
    "use_ema": True,
    "global_clipnorm": 1.0,
}


@pytest.mark.parametrize("extra_kwargs", [{}, STATEFUL], ids=["plain", "schedule-decay-ema-clip"])
@pytest.mark.parametrize("name", IDS)
def test_optimizer_state_dict_round_trip_resumes_identically(name, extra_kwargs, rng):
    kwargs = {"momentum": 0.9} if name in ("sgd", "rmsprop") else {}
    kwargs.update(extra_kwargs)
    w0, grads = trajectory.weights_and_grads(rng, steps=20, dtype="float32")
    straight = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    trajectory.run_ours(trajectory.spec(name, kwargs).build(straight), straight, grads)

    first = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    optimizer = trajectory.spec(name, kwargs).build(first)
    trajectory.run_ours(optimizer, first, grads[:10])
    saved = _save_load(optimizer.state_dict())
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in first]
    fresh = trajectory.spec(name, kwargs).build(resumed)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    trajectory.run_ours(fresh, resumed, grads[10:])
    for a, b in zip(straight, resumed):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# Keras' default rates (mostly 0.001) barely move a linear model in 100 steps, so 0.05; Adadelta's
# first steps are about sqrt(epsilon) long, so it needs a large rate.
LOSS_DOWN_RATE = {"adadelta": 10.0}


@pytest.mark.parametrize("name", IDS)
def test_optimizer_loss_goes_down_on_tiny_regression(name):
    module = torch.nn.Linear(3, 1)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    spec = optimizers.get(name)
    spec.learning_rate = LOSS_DOWN_RATE.get(name, 0.05)
    optimizer = optimizers.build(spec, module.parameters())
    losses = []
    for _ in range(100):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(module(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", IDS)
def test_optimizer_config_round_trips(name):
    spec = optimizers.get(name)
    spec.learning_rate = optimizers.schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=5)
    spec.clipnorm = 2.0
    again = type(spec).from_config(copy.deepcopy(spec.get_config()))
    assert again.get_config() == spec.get_config()
    assert isinstance(again.learning_rate, optimizers.schedules.CosineDecay)


@pytest.mark.keras
@pytest.mark.parametrize("name", IDS)
def test_optimizer_from_keras_config_builds(name):
    from tests.keras_oracle import keras

    keras_optimizer = getattr(keras.optimizers, trajectory.KERAS_CLASS[name])(
        learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9), clipvalue=1.0
    )
    spec = optimizers.get({"class_name": trajectory.KERAS_CLASS[name], "config": keras_optimizer.get_config()})
    assert spec.clipvalue == 1.0 and spec.learning_rate(10) == pytest.approx(0.09)


def test_optimizer_param_groups_lr_holds_next_step_rate():
    schedule = optimizers.schedules.PiecewiseConstantDecay([2], [0.1, 0.01])
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = optimizers.SGD(learning_rate=schedule).build([p])
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        optimizer.step()
    assert seen == [schedule(i) for i in range(5)] == [0.1, 0.1, 0.1, 0.01, 0.01]
    assert optimizer.param_groups[0]["iterations"] == 5


def test_optimizer_lr_scheduler_is_stepped_per_step_and_saved():
    make = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=3, gamma=0.5)
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = optimizers.Adam(learning_rate=0.1, lr_scheduler=make).build([p])
    rates = []
    for _ in range(7):
        rates.append(optimizers.get_learning_rate(optimizer))
        p.grad = torch.ones(2)
        optimizer.step()
    assert rates == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])
    saved = _save_load(optimizer.state_dict())
    assert saved["lr_scheduler"]["last_epoch"] == 7
    fresh = optimizers.Adam(learning_rate=0.1, lr_scheduler=make).build([torch.nn.Parameter(torch.zeros(2))])
    fresh.load_state_dict(saved)
    for _ in range(2):  # StepLR's third decay happens at step 9
        fresh.param_groups[0]["params"][0].grad = torch.ones(2)
        fresh.step()
        optimizer.step()
    assert optimizers.get_learning_rate(fresh) == optimizers.get_learning_rate(optimizer) == pytest.approx(0.0125)


def test_optimizer_step_pre_hook_clips_gradients_in_place():
    p = torch.nn.Parameter(torch.zeros(4))
    optimizer = optimizers.SGD(learning_rate=1.0, global_clipnorm=1.0).build([p])
    p.grad = torch.full((4,), 3.0)
    optimizer.step()
    torch.testing.assert_close(p.grad.norm(), torch.tensor(1.0))
    torch.testing.assert_close(p.detach(), torch.full((4,), -0.5))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"clipnorm": 1.0, "clipvalue": 1.0}, ValueError, "Only one of `clipnorm`"),
        ({"learning_rate": "fast"}, ValueError, "Received: learning_rate='fast'"),
        (
            {
                "lr_scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1),
                "learning_rate": optimizers.schedules.ExponentialDecay(0.1, 1, 0.5),
            },
            ValueError,
            "not both",
        ),
        ({"lr_scheduler": "step"}, TypeError, "Received: lr_scheduler='step'"),
        ({"use_ema": True, "ema_momentum": 2.0}, ValueError, "ema_momentum=2.0"),
    ],
)
def test_optimizer_invalid_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        optimizers.Adam(**kwargs)


def test_optimizer_build_without_parameters_raises():
    with pytest.raises(ValueError, match="no parameters"):
        optimizers.Adam().build([])


def test_optimizer_build_accepts_param_groups():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = optimizers.SGD(learning_rate=0.1).build([{"params": iter([a])}, {"params": b}])
    assert [g["params"] for g in optimizer.param_groups] == [[a], [b]]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_optimizer_uses_torch_fused_kernel_where_the_device_has_one(name, device):
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2, device=device))])
    fused_on_cpu = name != "sgd"  # fused SGD refuses sparse gradients, so the CPU keeps torch's default
    assert optimizer.param_groups[0]["fused"] is (True if device.type == "cuda" or fused_on_cpu else None)
