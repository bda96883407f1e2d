# SPDX-License-Identifier: Apache-2.0
import pytest
import torch

from torchcompile import optimizers
from torchcompile.optimizers import serialization


def params():
    return [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.zeros(2))]


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "nadam", "lion"])
def test_build_optimizer_round_trips_the_class_and_defaults(name):
    spec = optimizers.get(name)
    spec.clipnorm = 1.0
    optimizer = optimizers.build(spec, params())
    config = serialization.optimizer_config(optimizer)
    assert serialization.is_plain(config)
    again = serialization.build_optimizer(config, params(), {})
    assert type(again) is type(optimizer) and again.defaults == optimizer.defaults
    assert serialization.optimizer_config(again) == config


def test_optimizer_config_keeps_a_serializable_schedule():
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    optimizer = optimizers.SGD(learning_rate=schedule).build(params())
    config = serialization.optimizer_config(optimizer)
    rebuilt = serialization.build_optimizer(config, params(), {})
    assert optimizers.get_learning_rate(rebuilt) == optimizers.get_learning_rate(optimizer)


def test_a_foreign_optimizer_class_is_stored_by_name_and_comes_from_custom_objects():
    class Mine(torch.optim.SGD):
        pass

    config = serialization.optimizer_config(Mine(params(), lr=0.1))
    assert config["class_name"] == {"custom": "Mine"} and serialization.custom_names(config) == {"Mine"}
    assert type(serialization.build_optimizer(config, params(), {"Mine": Mine})) is Mine


def test_optimizer_class_refuses_a_module_outside_the_allow_list():
    config = {"class_name": "os.system", "defaults": {}, "hooks": None}
    with pytest.raises(ValueError, match=r"not one torchcompile imports by name.*custom_objects"):
        serialization.optimizer_class(config, {})


def test_optimizer_class_of_a_class_that_does_not_exist_is_a_value_error():
    with pytest.raises(ValueError, match="does not exist"):
        serialization.optimizer_class({"class_name": "torch.optim.NoSuchOptimizer"}, {})


@pytest.mark.parametrize(
    "value, plain", [({"a": [1, 2.0, "x", None, True]}, True), ({"a": torch.ones(1)}, False), ({1: 2}, False)]
)
def test_is_plain(value, plain):
    assert serialization.is_plain(value) is plain


def test_check_optimizer_state_takes_torchs_class_and_its_keras_subclass_as_one():
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = optimizers.build("adam", params)
    state = optimizer.state_dict()
    serialization.check_optimizer_state(optimizer, state, "torch.optim.adam.Adam", "a file saved before TorchAdam")
