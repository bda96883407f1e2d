# SPDX-License-Identifier: Apache-2.0
"""The torch-backed optimizers against Keras 3: defaults, and 50-step trajectories per option."""

import pytest
import torch

from tests.optimizers import trajectory
from torchcompile import optimizers

# Rule-equal cases, compared in float64; the measured differences are <= 1e-9 of the distance
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
    difference = trajectory.difference_from_keras(name, trajectory.rule_kwargs(name, kwargs), rng)
    assert difference <= RULE_TOLERANCE


# Epsilon placement at Keras' default epsilon=1e-7, standard-normal gradients, 50 steps, float64,
# as a fraction of the distance travelled: (id, kwargs, measured, allowed). Keras' Adam family
# scales epsilon by the bias correction, effectively eps/sqrt(1 - beta_2**t) (3.2e-6 at t=1);
# Keras' RMSprop divides by sqrt(v + eps), torch's by sqrt(v) + eps, which differ wherever a
# gradient entry is below ~1e-3 (v ~ eps): api.md's "below 1e-5" does not hold for RMSprop.
EPSILON_CASES = [
    ("adam", {}, 3.7e-5, 1e-4),
    ("adam", {"amsgrad": True}, 3.7e-5, 1e-4),
    ("adamw", {}, 3.7e-5, 1e-4),
    ("rmsprop", {}, 3.9e-3, 1e-2),
    ("rmsprop", {"centered": True}, 3.9e-3, 1e-2),
    ("rmsprop", {"momentum": 0.9}, 4.4e-3, 1e-2),
    ("adagrad", {}, 4.7e-8, 1e-6),  # the accumulator starts at 0.1, so eps barely matters
    ("adamax", {}, 1e-9, 1e-6),  # torch's max(b2*u, |g| + eps) vs Keras' max(b2*u, |g|) + eps
]


@pytest.mark.keras
@pytest.mark.parametrize("name, kwargs, measured, allowed", EPSILON_CASES, ids=map(_id, EPSILON_CASES))
def test_builtin_epsilon_placement_difference_is_bounded(name, kwargs, measured, allowed, rng, keras_float64):
    difference = trajectory.difference_from_keras(name, kwargs, rng)
    assert difference <= allowed, f"measured {difference:.2e} (recorded: {measured:.1e})"


KERAS_DEFAULTS = {  # api.md's table: the torch keywords each id must carry.
    "sgd": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.0, "nesterov": False, "dampening": 0, "weight_decay": 0}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.001, "alpha": 0.9, "eps": 1e-7, "momentum": 0.0, "centered": False}),
    "adam": (torch.optim.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "amsgrad": False, "weight_decay": 0}),
    "adamw": (torch.optim.AdamW, {"lr": 0.001, "weight_decay": 0.004, "betas": (0.9, 0.999), "eps": 1e-7}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.001, "initial_accumulator_value": 0.1, "eps": 1e-7}),
    "adadelta": (torch.optim.Adadelta, {"lr": 0.001, "rho": 0.95, "eps": 1e-7}),
    "adamax": (torch.optim.Adamax, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "nadam": (torch.optim.NAdam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7, "momentum_decay": 1.0}),
}


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_builtin_id_builds_torch_class_with_keras_defaults(name):
    torch_class, expected = KERAS_DEFAULTS[name]
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2))])
    assert type(optimizer) is torch_class
    assert {k: optimizer.param_groups[0][k] for k in expected} == expected


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
