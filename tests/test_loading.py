# SPDX-License-Identifier: Apache-2.0
import warnings

import pytest
import torch
from torch import nn

import torchcompile as tc
from tests.saving_cases import Net, data, model_of, my_loss, my_metric, same, snapshot, unchanged
from torchcompile import saving


def test_save_and_load_model_resume_training_identically(tmp_path):
    x, y = data()
    model = model_of(metrics=["mae"])
    model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert loaded.initial_epoch == 2 and isinstance(loaded.optimizer, torch.optim.Adam)
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert same(model.module, loaded.module)
    assert loaded.metrics_names == model.metrics_names == ["loss", "compile_metrics"]  # Keras' names
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))


def test_load_model_restores_keras_optimizer_extras(tmp_path):
    schedule = tc.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model = model_of(optimizer=tc.optimizers.SGD(learning_rate=schedule, momentum=0.9, clipnorm=1.0))
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert tc.optimizers.get_learning_rate(loaded.optimizer) == tc.optimizers.get_learning_rate(model.optimizer)
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert same(model.module, loaded.module)


def test_load_model_keeps_loss_and_metric_configs(tmp_path):
    loss = tc.losses.Huber(delta=0.5)
    model = model_of(loss=loss, metrics=[tc.metrics.MeanAbsoluteError(name="m_a_e")])
    model.save(tmp_path / "m.pt")
    config = torch.load(tmp_path / "m.pt", weights_only=True)["compile"]
    assert config["loss"] == {"class_name": "Huber", "config": loss.get_config()}
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert loaded.get_compile_config()["loss"].delta == 0.5
    assert loaded.evaluate(*data(), verbose=0, return_dict=True).keys() == {"loss", "m_a_e"}


def test_saving_a_python_callable_warns_and_load_model_asks_for_it(tmp_path):
    model = model_of(loss=my_loss, metrics=[my_metric])
    with pytest.warns(UserWarning, match="custom_objects"):
        model.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"\['my_loss', 'my_metric'\].*custom_objects"):
        tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    loaded = tc.load_model(
        tmp_path / "m.pt", module=Net(), device="cpu", custom_objects={"my_loss": my_loss, "my_metric": my_metric}
    )
    assert loaded.get_compile_config()["loss"] is my_loss


def test_load_model_missing_a_custom_object_leaves_the_module_unchanged(tmp_path):
    model = model_of(loss=my_loss)
    model.fit(*data(), epochs=1, verbose=0)
    with pytest.warns(UserWarning):
        model.save(tmp_path / "m.pt")
    torch.manual_seed(1)
    module = Net()
    before = snapshot(module)
    with pytest.raises(ValueError, match="my_loss"):
        tc.load_model(tmp_path / "m.pt", module=module, device="cpu")
    assert unchanged(module, before)


def test_load_model_with_compile_false_loads_weights_only(tmp_path):
    model = model_of(loss=my_loss)
    with pytest.warns(UserWarning):
        model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), compile=False, device="cpu")
    assert not loaded.compiled and same(model.module, loaded.module)


def test_load_model_needs_the_module(tmp_path):
    model_of().save(tmp_path / "m.pt")
    with pytest.raises(TypeError, match="module=Net"):
        tc.load_model(tmp_path / "m.pt")


def test_load_model_refuses_a_weights_file(tmp_path):
    model_of().save_weights(tmp_path / "w.pt")
    with pytest.raises(ValueError, match="load_weights"):
        tc.load_model(tmp_path / "w.pt", module=Net(), device="cpu")


def test_load_weights_reads_the_weights_of_a_full_save(tmp_path):
    model = model_of()
    model.fit(*data(), epochs=1, verbose=0)
    model.save(tmp_path / "m.pt")
    other = model_of(Net())
    assert not same(model.module, other.module)
    other.load_weights(tmp_path / "m.pt")
    assert same(model.module, other.module)


def test_load_model_restores_the_dtype_policy_and_execution_options(tmp_path):
    model = tc.Model(torch.nn.Linear(3, 2), device="cpu")
    model.compile("adam", "mse", steps_per_execution=4, dtype_policy="mixed_bfloat16")
    model.save(tmp_path / "model.pt")
    restored = tc.load_model(tmp_path / "model.pt", module=torch.nn.Linear(3, 2), device="cpu")
    assert restored.dtype_policy.name == "mixed_bfloat16" and restored.steps_per_execution == 4


# ---------------------------------------------------------------- format versions and classes
def test_load_model_refuses_a_newer_format_version_naming_both(tmp_path):
    model_of().save(tmp_path / "m.pt")
    data_ = torch.load(tmp_path / "m.pt", weights_only=True)
    data_["version"] = saving.MODEL_VERSION + 1
    del data_["weights"]  # a newer layout: today this is a KeyError
    torch.save(data_, tmp_path / "m.pt")
    module = Net()
    before = snapshot(module)
    newer, ours = saving.MODEL_VERSION + 1, saving.MODEL_VERSION
    with pytest.raises(ValueError, match=rf"format version {newer}, but this torchcompile reads versions up to {ours}"):
        tc.load_model(tmp_path / "m.pt", module=module, device="cpu")
    assert unchanged(module, before)


def test_load_model_reads_a_version_1_file(tmp_path):
    model = model_of()
    model.save(tmp_path / "m.pt")
    data_ = torch.load(tmp_path / "m.pt", weights_only=True)
    data_["version"] = 1
    del data_["optimizer_class"]
    data_["module_class"] = "Net"
    torch.save(data_, tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert same(model.module, loaded.module) and isinstance(loaded.optimizer, torch.optim.Adam)


def test_load_model_refuses_an_optimizer_state_of_another_class_naming_both(tmp_path):
    model_of(optimizer="adam").save(tmp_path / "m.pt")
    data_ = torch.load(tmp_path / "m.pt", weights_only=True)
    sgd = tc.optimizers.SGD(momentum=0.9).build(list(Net().parameters()))
    data_["compile"]["optimizer"] = saving.serialization.optimizer_config(sgd)  # the Adam state stays
    torch.save(data_, tmp_path / "m.pt")
    module = Net()
    before = snapshot(module)
    with pytest.raises(ValueError, match=r"saved from a \S*Adam.*is a \S*SGD"):
        tc.load_model(tmp_path / "m.pt", module=module, device="cpu")
    assert unchanged(module, before)


class Renamed(Net):
    pass


def test_load_model_warns_when_the_module_class_differs(tmp_path):
    model_of().save(tmp_path / "m.pt")
    with pytest.warns(UserWarning, match=r"saved from a Net module, and is loaded into a Renamed"):
        tc.load_model(tmp_path / "m.pt", module=Renamed(), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")


# ---------------------------------------------------------------- torch loss modules
def test_load_model_rebuilds_a_torch_loss_module_without_custom_objects(tmp_path):
    model = model_of(loss=nn.MSELoss(), metrics=[nn.L1Loss(reduction="mean")])
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is saved by name
        model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert type(loaded.get_compile_config()["loss"]) is nn.MSELoss
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert same(model.module, loaded.module)


def test_load_model_rebuilds_a_torch_loss_modules_constructor_arguments(tmp_path):
    module = nn.Linear(3, 4)
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0, 4.0]), label_smoothing=0.1, ignore_index=2)
    model = tc.Model(module, device="cpu")
    model.compile("adam", loss=loss)
    model.save(tmp_path / "m.pt")
    rebuilt = tc.load_model(tmp_path / "m.pt", module=nn.Linear(3, 4), device="cpu").get_compile_config()["loss"]
    assert type(rebuilt) is nn.CrossEntropyLoss and rebuilt is not loss
    assert (rebuilt.label_smoothing, rebuilt.ignore_index, rebuilt.reduction) == (0.1, 2, "mean")
    assert torch.equal(rebuilt.weight, loss.weight)


def test_a_subclass_of_a_torch_loss_is_still_asked_for_in_custom_objects(tmp_path):
    class ScaledMSE(nn.MSELoss):
        def forward(self, y_pred, y_true):
            return 2 * super().forward(y_pred, y_true)

    with pytest.warns(UserWarning, match="ScaledMSE"):
        model_of(loss=ScaledMSE()).save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="ScaledMSE"):
        tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")


def test_load_model_keeps_compiles_gradient_accumulation_steps(tmp_path):
    model = tc.Model(torch.nn.Linear(3, 1), device="cpu")
    model.compile(torch.optim.SGD(model.parameters(), lr=0.1), "mse", gradient_accumulation_steps=3)
    model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=torch.nn.Linear(3, 1), device="cpu")
    assert loaded.get_compile_config()["gradient_accumulation_steps"] == 3
