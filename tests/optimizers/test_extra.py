# SPDX-License-Identifier: Apache-2.0
"""Lion, Ftrl, Lamb, Adafactor: Keras' rules as torch optimizers, against Keras 3."""

import pytest
import torch

from tests.optimizers import trajectory
from torchcompile import optimizers
from torchcompile.optimizers import extra

# Same rules as Keras, compared in float64: measured <= 1e-7 of the distance travelled
# (Adafactor's 8e-8 is Keras' float32 `1 / sqrt(step)`), so 1e-6 is allowed.
RULE_TOLERANCE = 1e-6

CASES = [
    ("lion", {}),
    ("lion", {"beta_1": 0.5, "beta_2": 0.9}),
    ("lion", {"learning_rate": 0.01}),
    ("ftrl", {}),
    ("ftrl", {"learning_rate": 0.1}),
    ("ftrl", {"learning_rate_power": 0.0}),
    ("ftrl", {"l1_regularization_strength": 0.01}),
    ("ftrl", {"l2_regularization_strength": 0.01}),
    ("ftrl", {"l2_shrinkage_regularization_strength": 0.01}),
    ("ftrl", {"beta": 0.1}),
    ("ftrl", {"initial_accumulator_value": 1.0, "l1_regularization_strength": 0.5}),
    ("lamb", {}),
    ("lamb", {"beta_1": 0.5, "epsilon": 1e-3}),
    ("lamb", {"learning_rate": 0.01}),
    ("adafactor", {}),
    ("adafactor", {"relative_step": False}),
    ("adafactor", {"clip_threshold": 0.5}),
    ("adafactor", {"beta_2_decay": -0.5, "epsilon_2": 0.1}),
    ("adafactor", {"epsilon_1": 1e-3}),
    (
        "adafactor",
        {"learning_rate": ("ExponentialDecay", {"initial_learning_rate": 0.5, "decay_steps": 10, "decay_rate": 0.5})},
    ),
    (
        "ftrl",
        {
            "beta": 0.1,
            "learning_rate": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 40, "alpha": 0.1}),
        },
    ),
]


@pytest.mark.keras
@pytest.mark.parametrize("case", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_extra_trajectory_matches_keras(case, rng, keras_float64):
    name, kwargs = case
    shapes = trajectory.SHAPES_3D if name == "adafactor" else trajectory.SHAPES
    assert trajectory.difference_from_keras(name, kwargs, rng, shapes=shapes) <= RULE_TOLERANCE


KERAS_DEFAULTS = {
    "lion": (extra.TorchLion, {"lr": 0.001, "betas": (0.9, 0.99)}),
    "ftrl": (
        extra.TorchFtrl,
        {
            "lr": 0.001,
            "lr_power": -0.5,
            "initial_accumulator_value": 0.1,
            "l1": 0.0,
            "l2": 0.0,
            "l2_shrinkage": 0.0,
            "beta": 0.0,
        },
    ),
    "lamb": (extra.TorchLamb, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-7}),
    "adafactor": (
        extra.TorchAdafactor,
        {"lr": 0.001, "beta2_decay": -0.8, "eps": (1e-30, 1e-3), "d": 1.0, "weight_decay": 0.0},
    ),
}


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_extra_id_builds_torch_optimizer_with_keras_defaults(name):
    torch_class, expected = KERAS_DEFAULTS[name]
    optimizer = optimizers.build(name, [torch.nn.Parameter(torch.zeros(2, 2))])
    assert type(optimizer) is torch_class and isinstance(optimizer, torch.optim.Optimizer)
    assert {k: optimizer.param_groups[0][k] for k in expected} == expected


def test_adafactor_id_builds_a_torch_adafactor():
    optimizer = optimizers.build("adafactor", [torch.nn.Parameter(torch.zeros(2, 2))])
    assert isinstance(optimizer, torch.optim.Adafactor)


def test_adafactor_loads_a_torch_adafactor_state_dict():
    params = [torch.nn.Parameter(torch.ones(3, 4)), torch.nn.Parameter(torch.ones(4))]
    theirs = torch.optim.Adafactor(params, lr=0.01)
    for p in params:
        p.grad = torch.full_like(p, 0.5)
    theirs.step()
    ours = optimizers.Adafactor(learning_rate=0.01).build(params)
    ours.load_state_dict(theirs.state_dict())
    before = [p.detach().clone() for p in params]
    ours.step()
    assert all(ours.state[p]["step"].item() == 2.0 for p in params)
    assert all(not torch.equal(p, b) for p, b in zip(params, before))


@pytest.mark.parametrize("shape", [(3, 4), (4,)])
def test_adafactor_maximize_and_weight_decay_as_torch_options(shape):
    params = [
        torch.nn.Parameter(torch.linspace(-1, 1, 12)[: torch.Size(shape).numel()].reshape(shape)) for _ in range(2)
    ]
    plain, options = (
        extra.TorchAdafactor([params[0]], lr=0.1),
        extra.TorchAdafactor([params[1]], lr=0.1, maximize=True, weight_decay=0.5),
    )
    params[0].grad, params[1].grad = torch.full(shape, 0.5), torch.full(shape, -0.5)
    with torch.no_grad():
        params[0].mul_(1 - 0.1 * 0.5)
    plain.step()
    options.step()
    torch.testing.assert_close(params[0], params[1])


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_extra_spec_defaults_equal_keras_constructor_defaults(name):
    from tests.keras_oracle import keras

    ours = optimizers.get(name).get_config()
    theirs = getattr(keras.optimizers, type(optimizers.get(name)).__name__)().get_config()
    shared = set(ours) & set(theirs) - {"name"}
    assert shared >= set(type(optimizers.get(name))._keras_args)
    trajectory.assert_same_config(ours, theirs, shared)


@pytest.mark.parametrize("torch_class", [extra.TorchLion, extra.TorchFtrl, extra.TorchLamb, extra.TorchAdafactor])
def test_extra_torch_class_skips_parameters_without_gradients(torch_class):
    used, unused = torch.nn.Parameter(torch.ones(2, 2)), torch.nn.Parameter(torch.ones(3))
    optimizer = torch_class([used, unused])
    used.grad = torch.ones(2, 2)
    optimizer.step()
    assert torch.equal(unused, torch.ones(3)) and not torch.equal(used, torch.ones(2, 2))
    assert unused not in optimizer.state


@pytest.mark.parametrize("torch_class", [extra.TorchLion, extra.TorchFtrl, extra.TorchLamb, extra.TorchAdafactor])
def test_extra_torch_class_step_returns_closure_loss(torch_class):
    p = torch.nn.Parameter(torch.ones(3))
    optimizer = torch_class([p])

    def closure():
        optimizer.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 3.0


@pytest.mark.parametrize("kwargs, match", [({"beta_1": 0.0}, "beta_1"), ({"beta_1": 1.5}, "beta_1")])
def test_lion_invalid_beta_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimizers.Lion(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learning_rate_power": 0.5},
        {"initial_accumulator_value": -1.0},
        {"l1_regularization_strength": -1.0},
        {"l2_regularization_strength": -1.0},
        {"l2_shrinkage_regularization_strength": -1.0},
    ],
)
def test_ftrl_invalid_argument_raises_naming_it(kwargs):
    ((key, value),) = kwargs.items()
    with pytest.raises(ValueError, match=f"Received: {key}={value}"):
        optimizers.Ftrl(**kwargs)
