# SPDX-License-Identifier: Apache-2.0
"""gradient_accumulation_steps against Keras 3's optimizer: the same gradient sequence fed to both.

Ours runs through engine/accumulation.py (what fit's train step calls): each gradient reaches
``.grad`` by ``backward`` of ``sum(<p, g>)``, so the running sum is autograd's own; Keras' through
``apply_gradients`` with ``gradient_accumulation_steps``. 50 steps (N = 2 leaves no partial
cycle, N = 3 leaves two accumulated micro-steps), float64, as the other trajectory tests.
"""

import numpy as np
import pytest
import torch

from tests.optimizers import trajectory
from torchcompile import mixed_precision, optimizers
from torchcompile.engine import accumulation
from torchcompile.optimizers.step_hooks import raw_iterations

RULE_TOLERANCE = 1e-6  # as tests/optimizers/test_builtin.py; measured differences are float64 rounding

EXPONENTIAL = ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 3, "decay_rate": 0.5})
PIECEWISE = ("PiecewiseConstantDecay", {"boundaries": [7, 20], "values": [0.1, 0.01, 0.05]})
CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "learning_rate": EXPONENTIAL}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "learning_rate": PIECEWISE}),
    ("sgd", {"clipnorm": 0.5, "learning_rate": 0.1}),
    ("sgd", {"global_clipnorm": 0.5, "learning_rate": 0.1}),
    ("sgd", {"clipvalue": 0.2, "learning_rate": 0.1}),
    ("sgd", {"weight_decay": 0.1, "learning_rate": EXPONENTIAL}),
    ("adam", {}),
    ("adam", {"clipnorm": 0.5, "weight_decay": 0.05}),
    (
        "adam",
        {"learning_rate": ("InverseTimeDecay", {"initial_learning_rate": 0.01, "decay_steps": 5, "decay_rate": 1})},
    ),
    ("adamw", {"weight_decay": 0.1, "learning_rate": EXPONENTIAL}),
    ("rmsprop", {"momentum": 0.9, "learning_rate": EXPONENTIAL}),
    ("adagrad", {}),
    ("adamax", {}),
    ("nadam", {}),
    ("lion", {"weight_decay": 0.1}),
]
EMA_CASES = [
    ("sgd", {"learning_rate": 0.1, "use_ema": True, "ema_momentum": 0.9}),
    ("adam", {"use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 3}),
]


def _id(case):
    return f"{case[0]}-{case[1]}"


def run_accumulated(name: str, kwargs: dict, steps: int, w0: list, grads: list) -> tuple[list, torch.optim.Optimizer]:
    """Our final weights: every gradient through the accumulation's backward_and_step."""
    params = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    optimizer = trajectory.spec(name, {**kwargs, "gradient_accumulation_steps": steps}).build(params)
    precision = mixed_precision.Precision(mixed_precision.Policy("float32"), torch.device("cpu"), optimizer)
    accumulating = accumulation.attach(optimizer, steps, precision)
    for step in grads:
        loss = sum((p * torch.tensor(g)).sum() for p, g in zip(params, step))  # d loss / d p == g
        accumulating.backward_and_step(loss)
    if kwargs.get("use_ema"):
        optimizers.finalize_variable_values(optimizer)
    return [p.detach().numpy() for p in params], optimizer


@pytest.mark.keras
@pytest.mark.parametrize("steps", [2, 3])
@pytest.mark.parametrize("case", CASES + EMA_CASES, ids=map(_id, CASES + EMA_CASES))
def test_accumulation_trajectory_matches_keras(case, steps, rng, keras_float64):
    name, kwargs = case
    w0, grads = trajectory.weights_and_grads(rng)
    ours, _ = run_accumulated(name, kwargs, steps, w0, grads)
    theirs = trajectory.keras_final(
        name, {**kwargs, "gradient_accumulation_steps": steps}, w0, grads, finalize=bool(kwargs.get("use_ema"))
    )
    assert trajectory.relative_difference(ours, theirs, w0) <= RULE_TOLERANCE


@pytest.mark.parametrize("steps", [2, 3])
def test_accumulation_counts_as_keras_iterations_do(steps, rng):
    w0, grads = trajectory.weights_and_grads(rng, steps=11)
    _, optimizer = run_accumulated("sgd", {"learning_rate": EXPONENTIAL}, steps, w0, grads)
    group = optimizer.param_groups[0]
    assert group["iterations"] == 11 // steps  # Keras' optimizer.iterations: the updates made
    assert group["accumulated_steps"] == 11 % steps
    assert raw_iterations(group, steps) == 11  # Keras' _iterations, which the schedule reads
    schedule = optimizers.schedules.ExponentialDecay(**EXPONENTIAL[1])
    assert group["lr"] == pytest.approx(float(schedule(11)))


def test_accumulation_weights_move_only_on_every_nth_step(rng):
    w0, grads = trajectory.weights_and_grads(rng, steps=6)
    seen = []
    for n in range(1, 7):
        weights, _ = run_accumulated("sgd", {"learning_rate": 0.1}, 3, w0, grads[:n])
        seen.append(not all(np.array_equal(a, b) for a, b in zip(weights, w0)))
    assert seen == [False, False, True, True, True, True]
    after_3, _ = run_accumulated("sgd", {"learning_rate": 0.1}, 3, w0, grads[:3])
    after_5, _ = run_accumulated("sgd", {"learning_rate": 0.1}, 3, w0, grads[:5])
    assert all(np.array_equal(a, b) for a, b in zip(after_3, after_5))


def test_accumulation_update_is_the_mean_of_the_gradients(rng):
    w0, grads = trajectory.weights_and_grads(rng, steps=3)
    weights, _ = run_accumulated("sgd", {"learning_rate": 0.1}, 3, w0, grads)
    for i, w in enumerate(w0):
        mean = (grads[0][i] + grads[1][i] + grads[2][i]) / 3
        np.testing.assert_allclose(weights[i], w - 0.1 * mean, rtol=1e-15, atol=1e-15)  # torch's add may fuse


@pytest.mark.parametrize("value", [1, -2, 2.5, True, "2"])
def test_accumulation_steps_below_two_or_not_an_integer_is_keras_value_error(value):
    with pytest.raises(ValueError, match=r"`gradient_accumulation_steps` must be an integer >= 2"):
        optimizers.Adam(gradient_accumulation_steps=value)


@pytest.mark.parametrize("value", [None, 0])
def test_accumulation_steps_falsy_turns_it_off_as_keras(value):
    assert optimizers.Adam(gradient_accumulation_steps=value).gradient_accumulation_steps is None


@pytest.mark.keras
def test_accumulation_config_round_trips_with_keras(keras_float64):
    ours = optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=4)
    theirs = keras_float64.optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=4)
    assert ours.get_config()["gradient_accumulation_steps"] == theirs.get_config()["gradient_accumulation_steps"] == 4
    assert optimizers.SGD.from_config(theirs.get_config()).gradient_accumulation_steps == 4


def test_accumulation_running_sums_round_trip_through_the_optimizer_state_dict(rng):
    w0, grads = trajectory.weights_and_grads(rng, steps=5)
    _, optimizer = run_accumulated("adam", {}, 3, w0, grads)  # 1 update, then 2 micro-steps in .grad
    state = optimizer.state_dict()
    assert len(state[accumulation.STATE_KEY]["gradients"]) == len(w0)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    sums = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    optimizer.load_state_dict(state)
    assert all(torch.equal(p.grad, s) for p, s in zip(params, sums))
    assert optimizer.param_groups[0]["accumulated_steps"] == 2
