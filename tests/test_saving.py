# SPDX-License-Identifier: Apache-2.0
import os

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile import saving


class Net(nn.Module):
    def __init__(self, hidden=5):
        super().__init__()
        self.dense = nn.Linear(3, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.out(self.norm(self.dense(x)))


class Evil:
    """Unpickling this runs code: it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def my_loss(y_true, y_pred):
    return ((y_true - y_pred) ** 2).mean(dim=-1)


def model_of(module=None, **compile_kwargs):
    torch.manual_seed(0)
    model = tc.Model(module or Net(), device="cpu")
    model.compile(**{"optimizer": "adam", "loss": "mse", **compile_kwargs})
    return model


def data(n=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_weights_writes_a_plain_state_dict(tmp_path):
    model = model_of()
    model.save_weights(tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    assert list(state) == list(model.module.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.module.state_dict().items())


def test_load_weights_round_trips(tmp_path):
    model = model_of()
    model.fit(*data(), epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.pt")
    torch.manual_seed(1)  # another initialisation, so only loading can make the two equal
    other = tc.Model(Net(), device="cpu")
    assert not same(model.module, other.module)
    other.load_weights(tmp_path / "w.pt")
    assert same(model.module, other.module)


def test_load_weights_reads_a_file_written_by_plain_torch(tmp_path):
    torch.manual_seed(1)  # model_of() seeds 0: only loading can make the two equal
    module = Net()
    torch.save(module.state_dict(), tmp_path / "plain.pth")
    model = model_of()
    assert not same(module, model.module)
    model.load_weights(tmp_path / "plain.pth")
    assert same(module, model.module)


def test_load_weights_of_another_architecture_names_the_keys_and_changes_nothing(tmp_path):
    torch.save(Net(hidden=7).state_dict(), tmp_path / "other.pt")
    model = model_of()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"dense.weight: file \(7, 3\) vs module \(5, 3\)") as error:
        model.load_weights(tmp_path / "other.pt")
    assert "none were loaded" in str(error.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_load_weights_with_missing_and_unexpected_keys_names_them(tmp_path):
    state = Net().state_dict()
    state["extra.weight"] = state.pop("out.bias")
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"missing keys \['out.bias'\].*unexpected keys \['extra.weight'\]"):
        model_of().load_weights(tmp_path / "w.pt")


def test_load_weights_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="No weights file"):
        model_of().load_weights(tmp_path / "nope.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_load_weights_of_a_corrupt_file_is_a_clear_error(tmp_path, damage):
    path = tmp_path / "w.pt"
    model_of().save_weights(path)
    path.write_bytes(path.read_bytes()[:50] if damage == "truncate" else b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="truncated, corrupt or not a torch file"):
        model_of().load_weights(path)


@pytest.mark.parametrize("loader", ["load_weights", "load_model", "backup"])
def test_a_malicious_pickle_is_never_executed(tmp_path, loader):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch.save({"format": "torchcompile.backup", "weights": {"dense.weight": Evil(marker)}}, path)
    with pytest.raises(ValueError, match="Refusing to load"):
        if loader == "load_weights":
            model_of().load_weights(path)
        elif loader == "load_model":
            tc.load_model(path, module=Net(), device="cpu")
        else:
            os.makedirs(tmp_path / "backup")
            os.replace(path, tmp_path / "backup" / "latest.pt")
            backup = tc.callbacks.BackupAndRestore(tmp_path / "backup")
            backup.set_model(model_of())
            backup.on_train_begin()
    assert not marker.exists()


def test_get_weights_lists_every_state_dict_entry_in_order():
    model = model_of()
    weights = model.get_weights()
    state = model.module.state_dict()
    assert len(weights) == len(state) == 9  # 4 parameters + BatchNorm's 3 buffers + 2 parameters
    assert all(isinstance(w, np.ndarray) and w.shape == tuple(v.shape) for w, v in zip(weights, state.values()))


def test_set_weights_round_trips_and_copies():
    source, target = model_of(Net()), model_of(Net())
    source.fit(*data(), epochs=1, verbose=0)
    target.set_weights(source.get_weights())
    assert same(source.module, target.module)


def test_set_weights_checks_count_and_shapes():
    model = model_of()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expects 9 arrays"):
        model.set_weights(weights[:-1])
    with pytest.raises(ValueError, match=r"dense.weight: expected \(5, 3\), got \(3, 5\)"):
        model.set_weights([weights[0].T, *weights[1:]])


def test_save_and_load_model_resume_training_identically(tmp_path):
    x, y = data()
    model = model_of(metrics=["mae"])
    model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    model.save(tmp_path / "m.pt")
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert loaded.initial_epoch == 2 and type(loaded.optimizer) is torch.optim.Adam
    for m in (model, loaded):
        m.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    assert same(model.module, loaded.module)
    assert loaded.metrics_names == model.metrics_names == ["loss", "mae"]


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
    model = model_of(loss=tc.losses.Huber(delta=0.5), metrics=[tc.metrics.MeanAbsoluteError(name="m_a_e")])
    model.save(tmp_path / "m.pt")
    config = torch.load(tmp_path / "m.pt", weights_only=True)["compile"]
    assert config["loss"] == {"class_name": "Huber", "config": model._compiled_loss.loss.get_config()}
    loaded = tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    assert loaded._compiled_loss.loss.delta == 0.5
    assert loaded.evaluate(*data(), verbose=0, return_dict=True).keys() == {"loss", "m_a_e"}


def test_saving_a_python_callable_warns_and_load_model_asks_for_it(tmp_path):
    model = model_of(loss=my_loss, metrics=[nn.L1Loss()])
    with pytest.warns(UserWarning, match="custom_objects"):
        model.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"\['L1Loss', 'my_loss'\].*custom_objects"):
        tc.load_model(tmp_path / "m.pt", module=Net(), device="cpu")
    loaded = tc.load_model(
        tmp_path / "m.pt", module=Net(), device="cpu", custom_objects={"my_loss": my_loss, "L1Loss": nn.L1Loss()}
    )
    assert loaded._compiled_loss.loss is my_loss


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
    model.save(tmp_path / "m.pt")
    other = model_of(Net())
    other.load_weights(tmp_path / "m.pt")
    assert same(model.module, other.module)


def test_save_with_overwrite_false_refuses_an_existing_file(tmp_path):
    model = model_of()
    model.save(tmp_path / "m.pt")
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(tmp_path / "m.pt", overwrite=False)


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.pt"
    saving.save_file({"v": 1}, path)

    def fail(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        saving.atomic_write(path, fail)
    assert saving.read_file(path) == {"v": 1} and os.listdir(tmp_path) == ["f.pt"]


def test_load_model_restores_the_dtype_policy_and_execution_options(tmp_path):
    model = tc.Model(torch.nn.Linear(3, 2), device="cpu")
    model.compile("adam", "mse", steps_per_execution=4, dtype_policy="mixed_bfloat16")
    model.save(tmp_path / "model.pt")
    restored = tc.load_model(tmp_path / "model.pt", module=torch.nn.Linear(3, 2), device="cpu")
    assert restored.dtype_policy.name == "mixed_bfloat16" and restored.steps_per_execution == 4
