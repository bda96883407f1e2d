# SPDX-License-Identifier: Apache-2.0
"""tc.optimizers.get / build / get_learning_rate / set_learning_rate on every identifier kind."""

import pytest
import torch

from torchcompile import optimizers

IDS = optimizers.ALL_OBJECTS.names()


def _module():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda s: s.capitalize()])
def test_get_string_ignores_case_and_returns_spec_with_defaults(name, spelling):
    spec = optimizers.get(spelling(name))
    assert isinstance(spec, optimizers.Optimizer) and type(spec).__name__.lower() == name
    assert spec.get_config() == type(spec)().get_config()


@pytest.mark.parametrize("identifier", ["RMSprop", "Nadam", "SGD", "AdamW"])
def test_get_accepts_keras_class_names(identifier):
    assert type(optimizers.get(identifier)).__name__ == identifier


def test_get_none_returns_none():
    assert optimizers.get(None) is None and optimizers.build(None, _module().parameters()) is None


def test_get_spec_and_torch_objects_pass_through():
    spec = optimizers.Adam(learning_rate=0.1)
    torch_optimizer = torch.optim.SGD(_module().parameters(), lr=0.1)
    assert optimizers.get(spec) is spec and optimizers.get(torch_optimizer) is torch_optimizer
    assert optimizers.get(torch.optim.Adam) is torch.optim.Adam


def test_get_spec_class_is_instantiated_with_keras_defaults():
    spec = optimizers.get(optimizers.Nadam)
    assert isinstance(spec, optimizers.Nadam) and spec.epsilon == 1e-7


def test_get_config_dict_builds_spec():
    spec = optimizers.get({"class_name": "adam", "config": {"learning_rate": 0.5, "beta_1": 0.8}})
    assert isinstance(spec, optimizers.Adam) and (spec.learning_rate, spec.beta_1) == (0.5, 0.8)


def test_get_unknown_string_lists_close_matches():
    with pytest.raises(ValueError, match=r"Did you mean 'adam'.*Received: optimizer='adamm'"):
        optimizers.get("adamm")


@pytest.mark.parametrize("identifier", [3, 0.1, ["adam"], object()])
def test_get_uninterpretable_identifier_raises_type_error(identifier):
    with pytest.raises(TypeError, match="Could not interpret optimizer identifier.*Received: optimizer="):
        optimizers.get(identifier)


@pytest.mark.parametrize(
    "identifier",
    ["adam", optimizers.SGD(momentum=0.9), {"class_name": "Lion", "config": {}}, torch.optim.Adagrad],
    ids=["string", "spec", "dict", "torch_class"],
)
def test_build_returns_torch_optimizer_over_module_parameters(identifier):
    module = _module()
    optimizer = optimizers.build(identifier, module.parameters())
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert [p for g in optimizer.param_groups for p in g["params"]] == list(module.parameters())


def test_build_torch_class_uses_its_own_defaults():
    assert optimizers.build(torch.optim.Adam, _module().parameters()).param_groups[0]["eps"] == 1e-8


def test_build_torch_instance_is_returned_as_is():
    module = _module()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    assert optimizers.build(optimizer, module.parameters()) is optimizer


def test_build_torch_instance_may_leave_out_frozen_parameters():
    module = _module()
    module[0].requires_grad_(False)
    optimizer = torch.optim.SGD(module[1].parameters(), lr=0.1)
    assert optimizers.build(optimizer, module.parameters()) is optimizer


@pytest.mark.parametrize("case", ["other_module", "missing_trainable"])
def test_build_torch_instance_over_wrong_parameters_raises(case):
    module = _module()
    params = _module().parameters() if case == "other_module" else module[1].parameters()
    with pytest.raises(ValueError, match=r"model.module.parameters\(\).*Received: optimizer with"):
        optimizers.build(torch.optim.SGD(params, lr=0.1), module.parameters())


@pytest.mark.parametrize(
    "optimizer_factory",
    [lambda ps: optimizers.build("sgd", ps), lambda ps: torch.optim.Adam(ps, lr=0.3)],
    ids=["spec", "torch"],
)
def test_learning_rate_get_and_set_on_any_torch_optimizer(optimizer_factory):
    module = _module()
    optimizer = optimizer_factory(module.parameters())
    optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 5.0})
    optimizers.set_learning_rate(optimizer, 0.125)
    assert optimizers.get_learning_rate(optimizer) == 0.125
    assert [g["lr"] for g in optimizer.param_groups] == [0.125, 0.125]


def test_learning_rate_set_on_tensor_rate_fills_in_place():
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([p], lr=torch.tensor(0.01))
    rate = optimizer.param_groups[0]["lr"]
    optimizers.set_learning_rate(optimizer, 0.5)
    assert optimizer.param_groups[0]["lr"] is rate and optimizers.get_learning_rate(optimizer) == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learning_rate": optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)},
        {"lr_scheduler": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1)},
    ],
    ids=["schedule", "lr_scheduler"],
)
def test_learning_rate_set_on_scheduled_optimizer_raises_type_error(kwargs):
    optimizer = optimizers.SGD(**kwargs).build(_module().parameters())
    with pytest.raises(TypeError, match="schedule.*not settable"):
        optimizers.set_learning_rate(optimizer, 0.1)
