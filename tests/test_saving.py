# SPDX-License-Identifier: Apache-2.0
import os
import stat
import sys

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from tests.saving_cases import Evil, Net, data, model_of, same, snapshot, unchanged
from torchcompile import saving

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


# ---------------------------------------------------------------- weights
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


def test_load_weights_with_a_non_tensor_entry_changes_nothing(tmp_path):
    torch.manual_seed(1)
    state = Net().state_dict()
    state["out.bias"] = [0.5]  # the last entry: torch would copy every tensor before it, then fail
    torch.save(state, tmp_path / "w.pt")
    model = model_of()
    before = snapshot(model.module)
    with pytest.raises(ValueError, match=r"not tensors \[out.bias: list\]"):
        model.load_weights(tmp_path / "w.pt")
    assert unchanged(model.module, before)


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


SHORT_OR_FOREIGN = {
    "4 bytes": b"\x80\x02J\x00",  # torch.load: struct.error
    "1 byte": b"\x80",  # IndexError
    "text": b"hello world\n",  # KeyError: 101
    "csv": b"epoch,loss\n0,1.0\n",  # IndexError
    "empty": b"",  # EOFError
}


@pytest.mark.parametrize("content", SHORT_OR_FOREIGN.values(), ids=SHORT_OR_FOREIGN.keys())
def test_read_file_of_a_short_or_foreign_file_is_a_value_error_naming_it(tmp_path, content):
    path = tmp_path / "odd.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"Could not read weights from '{path}'"):
        saving.read_file(path)
    with pytest.raises(ValueError, match="odd.pt"):
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


@pytest.mark.parametrize("kind", ["str", "object"])
def test_set_weights_with_right_shaped_non_numeric_arrays_changes_nothing(kind):
    model = model_of()
    weights = [w + 1 for w in model.get_weights()]
    last = weights[-1]
    weights[-1] = last.astype(str) if kind == "str" else np.array([object()] * last.size).reshape(last.shape)
    before = snapshot(model.module)
    with pytest.raises(ValueError, match=r"out.bias: expected numbers, got an array of dtype"):
        model.set_weights(weights)
    assert unchanged(model.module, before)


# ---------------------------------------------------------------- files
def test_save_with_overwrite_false_refuses_an_existing_file(tmp_path):
    model = model_of()
    model.save(tmp_path / "m.pt")
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(tmp_path / "m.pt", overwrite=False)


@pytest.mark.parametrize("method", ["save", "save_weights"])
@pytest.mark.parametrize("name", ["model.keras", "model.h5", "model.weights.h5"])
def test_save_refuses_keras_suffixes_naming_the_torch_format(tmp_path, method, name):
    with pytest.raises(ValueError, match=r"writes a torch file .*'\.pt'") as error:
        getattr(model_of(), method)(tmp_path / name)
    assert name in str(error.value) and not (tmp_path / name).exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.pt"
    saving.save_file({"v": 1}, path)

    def fail(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        saving.atomic_write(path, fail)
    assert saving.read_file(path) == {"v": 1} and os.listdir(tmp_path) == ["f.pt"]


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@posix_only
def test_atomic_write_creates_files_as_open_would(tmp_path, umask_022):
    saving.save_file({"v": 1}, tmp_path / "new.pt")
    with open(tmp_path / "plain", "w"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "new.pt").st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)
    assert stat.S_IMODE(os.stat(tmp_path / "new.pt").st_mode) == 0o644


@posix_only
def test_atomic_write_keeps_an_existing_files_mode(tmp_path, umask_022):
    path = tmp_path / "w.pt"
    model_of().save_weights(path)
    os.chmod(path, 0o640)
    model_of().save_weights(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


# ---------------------------------------------------------------- format versions and optimizer state
def test_check_version_refuses_a_newer_version_naming_both(tmp_path):
    saving.check_version({"version": saving.MODEL_VERSION}, saving.MODEL_VERSION, tmp_path / "m.pt", "model")
    with pytest.raises(ValueError, match=rf"version 7, but this torchcompile reads versions up to {3}"):
        saving.check_version({"version": 7}, 3, tmp_path / "m.pt", "backup")


def adam_state():
    p = nn.Parameter(torch.ones(2))
    adam = torch.optim.Adam([p])
    p.grad = torch.ones(2)
    adam.step()
    return adam.state_dict(), saving.optimizer_class_name(adam)


@pytest.mark.parametrize("recorded", [True, False], ids=["class recorded", "older file"])
def test_load_optimizer_state_of_another_class_is_refused_naming_both(recorded):
    state, adam_class = adam_state()
    sgd = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9)
    before = sgd.state_dict()
    with pytest.raises(ValueError, match="Adam" if recorded else r"hyperparameters \[.*'betas'") as error:
        saving.load_optimizer_state(sgd, state, adam_class if recorded else None, "'backup.pt'")
    assert "SGD" in str(error.value) and "'backup.pt'" in str(error.value)
    assert sgd.state_dict() == before


def test_load_optimizer_state_of_the_same_class_loads():
    state, adam_class = adam_state()
    adam = torch.optim.Adam([nn.Parameter(torch.ones(2))])
    saving.load_optimizer_state(adam, state, adam_class, "'backup.pt'")
    assert adam.state_dict()["state"][0]["step"] == 1


@pytest.mark.parametrize("content", [b"\x80", b"hello world\n"], ids=["1 byte", "text"])
def test_backup_and_restore_falls_back_to_the_previous_backup_on_a_short_or_foreign_file(tmp_path, content):
    x, y = data()

    def backup():
        return tc.callbacks.BackupAndRestore(tmp_path / "b", double_checkpoint=True, delete_checkpoint=False)

    model_of().fit(x, y, epochs=2, verbose=0, callbacks=[backup()])  # latest: after epoch 2; previous: epoch 1
    (tmp_path / "b" / "latest.pt").write_bytes(content)  # read_file's ValueError is the fallback's signal
    history = model_of().fit(x, y, epochs=3, verbose=0, callbacks=[backup()])
    assert history.epoch == [1, 2]
