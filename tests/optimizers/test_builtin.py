# SPDX-License-Identifier: Apache-2.0
"""The torch-backed optimizers against Keras 3: defaults, and 50-step trajectories per option."""

import copy

import pytest
import torch

from tests.optimizers import trajectory
from torchcompile import optimizers
from torchcompile.optimizers import builtin

# Compared in float64 at Keras' epsilon; the measured differences are <= 1e-9 of the distance
# travelled (Keras' float32 clipping arithmetic leaves up to ~5e-8), so 1e-6 is allowed.
RULE_TOLERANCE = 1e-6

OPTION_CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "nesterov": True}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"centered": True, "momentum": 0.9}),
    ("rmsprop", {"rho": 0.5}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"beta_1": 0.5, "beta_2": 0.9}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True}),
    ("adamw", {"weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"initial_accumulator_value": 1.0}),
    ("adadelta", {}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.9}),
    ("adamax", {}),
    ("adamax", {"beta_2": 0.9}),
    ("nadam", {}),
    ("nadam", {"beta_1": 0.8}),
]

# Keras folds the rate into SGD's/RMSprop's momentum; under a changing rate the step hook keeps that rule.
SCHEDULE_CASES = [
    (
        "sgd",
        {
            "momentum": 0.9,
            "learning_rate": ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 5, "decay_rate": 0.5}),
        },
    ),
    (
        "sgd",
        {
            "momentum": 0.9,
            "nesterov": True,
            "learning_rate": ("PiecewiseConstantDecay", {"boundaries": [10, 20], "values": [0.1, 0.01, 0.05]}),
        },
    ),
    (
        "rmsprop",
        {
            "momentum": 0.9,
            "learning_rate": ("CosineDecay", {"initial_learning_rate": 0.01, "decay_steps": 40, "alpha": 0.1}),
        },
    ),
    (
        "adam",
        {"learning_rate": ("InverseTimeDecay", {"initial_learning_rate": 0.01, "decay_steps": 10, "decay_rate": 1.0})},
    ),
    ("adamw", {"learning_rate": ("PolynomialDecay", {"initial_learning_rate": 0.01, "decay_steps": 30})}),
    ("nadam", {"learning_rate": ("CosineDecayRestarts", {"initial_learning_rate": 0.01, "first_decay_steps": 10})}),
]


def _id(case):
    return f"{case[0]}-{case[1]}"


@pytest.mark.keras
@pytest.mark.parametrize("case", OPTION_CASES + SCHEDULE_CASES, ids=map(_id, OPTION_CASES + SCHEDULE_CASES))
def test_builtin_trajectory_matches_keras(case, rng, keras_float64):
    name, kwargs = case
    difference = trajectory.difference_from_keras(name, kwargs, rng)
    assert difference <= RULE_TOLERANCE


# Epsilon placement, made to dominate by a large epsilon: 50 steps in float64, as a fraction of
# the distance travelled. With torch's placement these were 6.1e-1 (adam), 3.1 (adamw, eps 1),
# 5.9e-2 (rmsprop), 2.7e-2 (adagrad), 5.4e-4 (adamax); with Keras' they are float64 rounding
# (<= 1e-14), except Nadam's 6e-10, which Keras' float32 momentum schedule leaves.
EPSILON_CASES = [
    ("adam", {"epsilon": 0.1}),
    ("adam", {"epsilon": 0.1, "amsgrad": True}),
    ("adam", {"epsilon": 0.1, "beta_2": 0.9}),
    ("adamw", {"epsilon": 1.0}),
    ("rmsprop", {"epsilon": 0.1}),
    ("rmsprop", {"epsilon": 0.1, "centered": True}),
    ("rmsprop", {"epsilon": 0.1, "momentum": 0.5}),
    ("rmsprop", {"epsilon": 0.1, "centered": True, "momentum": 0.5}),
    ("adagrad", {"epsilon": 0.1}),
    ("adamax", {"epsilon": 0.1}),
    ("nadam", {"epsilon": 0.1}),
]
EPSILON_TOLERANCE = 1e-9


@pytest.mark.keras
@pytest.mark.parametrize("case", EPSILON_CASES, ids=map(_id, EPSILON_CASES))
def test_builtin_epsilon_placement_matches_keras(case, rng, keras_float64):
    name, kwargs = case
    difference = trajectory.difference_from_keras(name, kwargs, rng)
    assert difference <= EPSILON_TOLERANCE


KERAS_DEFAULTS = {  # api.md's table: the torch keywords each id must carry.
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False, "dampening": 0, "weight_decay": 0}),
    "rmsprop": (builtin.TorchRMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-7, "momentum": 0.0, "centered": False}),
    "adam": (
        torch.optim.Adam,
        {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "keras_epsilon": 1e-7, "amsgrad": False, "weight_decay": 0},
    ),
    "adamw": (
        torch.optim.AdamW,
        {"lr": 0.001, "weight_decay": 0.004, "betas": (0.9, 0.999), "eps": 1e-7, "keras_epsilon": 1e-7},
    ),
    "adagrad": (builtin.TorchAdagrad, {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adadelta": (torch.optim.Adadelta, {"lr": 0.001, "rho": 0.95, "eps": 1e-7}),
    "adamax": (builtin.TorchAdamax, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "momentum_decay": 1.0}),
}


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_builtin_id_builds_torch_class_with_keras_defaults(name):
    torch_class, expected = KERAS_DEFAULTS[name]
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2))])
    # torch's class itself, or a direct subclass that only adds Keras' `learning_rate` attribute
    assert type(optimizer) is torch_class or type(optimizer).__mro__[1] is torch_class
    assert {k: optimizer.param_groups[0][k] for k in expected} == expected


TORCH_BASES = {"rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad, "adamax": torch.optim.Adamax}


@pytest.mark.parametrize("name", sorted(TORCH_BASES))
def test_builtin_keras_rule_class_is_the_torch_class(name):
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2))])
    assert isinstance(optimizer, TORCH_BASES[name])


def _record_eps(optimizer: torch.optim.Optimizer) -> list[float]:
    """The ``eps`` torch's kernel sees at each step (a pre-hook registered after the Keras hooks)."""
    seen: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["eps"]))
    return seen


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_builtin_adam_kernel_gets_keras_epsilon_scaled_by_the_bias_correction(name):
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = type(optimizers.get(name))(epsilon=1e-4, beta_2=0.9).build([param])
    seen = _record_eps(optimizer)
    for _ in range(3):
        param.grad = torch.ones(3)
        optimizer.step()
    assert seen == [pytest.approx(1e-4 / (1 - 0.9**t) ** 0.5, rel=1e-15) for t in (1, 2, 3)]
    assert optimizer.param_groups[0]["fused"] is True  # torch's fused kernel stays
    assert optimizer.param_groups[0]["eps"] == optimizer.param_groups[0]["keras_epsilon"] == 1e-4


def test_builtin_adam_epsilon_follows_a_loaded_state_dict():
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(2)]
    trained = optimizers.Adam(epsilon=1e-3, beta_2=0.5).build([params[0]])
    for _ in range(3):
        params[0].grad = torch.ones(3)
        trained.step()
    fresh = optimizers.Adam(epsilon=1e-5).build([params[1]])
    fresh.load_state_dict(copy.deepcopy(trained.state_dict()))
    seen = _record_eps(fresh)
    params[1].grad = torch.ones(3)
    fresh.step()  # the pre-step hook reads Keras' epsilon and the step count from the group
    assert seen == [pytest.approx(1e-3 / (1 - 0.5**4) ** 0.5, rel=1e-15)]


@pytest.mark.parametrize(
    "name, kwargs",
    [("rmsprop", {"momentum": 0.9, "centered": True}), ("adagrad", {}), ("adamax", {})],
)
def test_builtin_keras_rule_class_state_dict_round_trips(name, kwargs):
    params = [torch.nn.Parameter(torch.ones(2, 3)) for _ in range(2)]
    first = getattr(optimizers, trajectory.KERAS_CLASS[name])(**kwargs).build([params[0]])
    params[0].grad = torch.full((2, 3), 0.5)
    first.step()
    second = getattr(optimizers, trajectory.KERAS_CLASS[name])(**kwargs).build([params[1]])
    second.load_state_dict(copy.deepcopy(first.state_dict()))  # torch's load shares same-device tensors
    with torch.no_grad():
        params[1].copy_(params[0])
    for p in params:
        p.grad = torch.full((2, 3), -0.25)
    first.step()
    second.step()
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


@pytest.mark.parametrize("torch_class", [builtin.TorchRMSprop, builtin.TorchAdagrad, builtin.TorchAdamax])
def test_builtin_keras_rule_class_skips_parameters_without_gradients(torch_class):
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch_class([used, unused], lr=0.1)
    used.grad = torch.ones(2)
    optimizer.step()
    assert not torch.equal(used, torch.ones(2)) and torch.equal(unused, torch.ones(2))


@pytest.mark.parametrize(
    "torch_class, kwargs",
    [
        (builtin.TorchRMSprop, {"momentum": 0.9, "centered": True, "weight_decay": 0.1, "maximize": True}),
        (builtin.TorchAdagrad, {"lr_decay": 0.1, "weight_decay": 0.1, "maximize": True}),
        (builtin.TorchAdamax, {"weight_decay": 0.1, "maximize": True}),
    ],
)
def test_builtin_keras_rule_class_matches_torch_at_zero_epsilon(torch_class, kwargs):
    # With eps=0 the placement no longer matters: torch's own options (L2 decay, maximize, lr_decay) agree.
    base = torch_class.__mro__[1]
    params = [torch.nn.Parameter(torch.linspace(-1, 1, 6, dtype=torch.float64)) for _ in range(2)]
    ours, theirs = torch_class([params[0]], lr=0.01, eps=0.0, **kwargs), base([params[1]], lr=0.01, eps=0.0, **kwargs)
    for step in range(5):
        for p in params:
            p.grad = torch.linspace(0.5, -0.7, 6, dtype=torch.float64) * (step + 1)
        ours.step()
        theirs.step()
    torch.testing.assert_close(params[0], params[1], rtol=1e-12, atol=1e-12)


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_builtin_spec_defaults_equal_keras_constructor_defaults(name):
    from tests.keras_oracle import keras

    ours = optimizers.get(name).get_config()
    theirs = keras.optimizers.get(name).get_config()
    shared = set(ours) & set(theirs) - {"name"}
    trajectory.assert_same_config(ours, theirs, shared)


@pytest.mark.parametrize("kwargs", [{"momentum": 1.5}, {"momentum": -0.1}, {"momentum": "0.9"}])
def test_sgd_invalid_momentum_raises(kwargs):
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(**kwargs)


@pytest.mark.parametrize("torch_class", [builtin.TorchRMSprop, builtin.TorchAdagrad, builtin.TorchAdamax])
def test_builtin_keras_rule_class_foreach_and_per_tensor_updates_agree(torch_class):
    kwargs = {"momentum": 0.9, "centered": True} if torch_class is builtin.TorchRMSprop else {}
    params = [[torch.nn.Parameter(torch.linspace(-1, 1, n, dtype=torch.float64)) for n in (3, 5)] for _ in range(2)]
    together = torch_class(params[0], lr=0.01, foreach=True, **kwargs)
    apart = torch_class(params[1], lr=0.01, foreach=False, **kwargs)
    for step in range(3):
        for group in params:
            for p in group:
                p.grad = torch.cos(p.detach() * (step + 1))
        together.step()
        apart.step()
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_builtin_optimizer_learning_rate_reads_and_writes_as_keras(name):
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2))])
    assert optimizer.learning_rate == pytest.approx(optimizer.param_groups[0]["lr"])
    optimizer.learning_rate = 0.5
    assert optimizer.param_groups[0]["lr"] == 0.5 and optimizer.learning_rate == 0.5


def test_builtin_optimizer_learning_rate_is_not_settable_under_a_schedule():
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    optimizer = optimizers.build(optimizers.SGD(learning_rate=schedule), [torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(TypeError, match="not settable"):
        optimizer.learning_rate = 0.5
