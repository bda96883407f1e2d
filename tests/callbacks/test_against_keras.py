# SPDX-License-Identifier: Apache-2.0
"""Our callbacks and Keras' fed the same hook calls with the same logs, side by side."""

import types

import numpy as np
import pytest
import torch

import torchcompile as tc

pytestmark = pytest.mark.keras


def keras():
    from tests import keras_oracle

    return keras_oracle.keras


def sequence(seed, n=12):
    rng = np.random.default_rng(seed)
    return (1.0 + np.cumsum(rng.normal(-0.05, 0.1, size=n))).tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patience=2),
        dict(patience=0),
        dict(patience=3, min_delta=0.05),
        dict(patience=2, mode="max"),
        dict(patience=2, baseline=0.9),
        dict(patience=1, start_from_epoch=3),
    ],
)
def test_early_stopping_matches_keras(seed, kwargs):
    results = []
    for module in (tc.callbacks, keras().callbacks):
        callback = module.EarlyStopping(monitor="val_loss", **kwargs)
        model = types.SimpleNamespace(stop_training=False, metrics=[])
        callback.set_model(model)
        callback.on_train_begin()
        epochs = 0
        for epoch, value in enumerate(sequence(seed)):
            epochs += 1
            callback.on_epoch_end(epoch, {"val_loss": value})
            if model.stop_training:
                break
        results.append((epochs, callback.stopped_epoch, callback.wait, callback.best, callback.best_epoch))
    assert results[0] == results[1]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patience=1),
        dict(patience=2, cooldown=1),
        dict(patience=1, min_lr=0.02),
        dict(patience=1, factor=0.5, min_delta=0.1),
    ],
)
def test_reduce_lr_on_plateau_matches_keras(seed, kwargs):
    ours = tc.callbacks.ReduceLROnPlateau(monitor="val_loss", **kwargs)
    theirs = keras().callbacks.ReduceLROnPlateau(monitor="val_loss", **kwargs)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    ours.set_model(types.SimpleNamespace(optimizer=optimizer, metrics=[]))
    theirs.set_model(types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=0.1), metrics=[]))
    for callback in (ours, theirs):
        callback.on_train_begin()
    rates = ([], [])
    for epoch, value in enumerate(sequence(seed)):
        for callback, seen in zip((ours, theirs), rates):
            logs = {"val_loss": value}
            callback.on_epoch_end(epoch, logs)
            seen.append(logs["learning_rate"])
    assert rates[0] == pytest.approx(rates[1], rel=1e-6)
    assert tc.optimizers.get_learning_rate(optimizer) == pytest.approx(float(theirs.model.optimizer.learning_rate))


@pytest.mark.parametrize("save_freq", [1, 3, 7])
def test_model_checkpoint_batch_counting_matches_keras(save_freq):
    ours = tc.callbacks.ModelCheckpoint("unused.pt", save_freq=save_freq)
    theirs = keras().callbacks.ModelCheckpoint("unused.keras", save_freq=save_freq)
    steps = [batch for _ in range(3) for batch in range(5)]
    assert [ours._should_save_on_batch(b) for b in steps] == [theirs._should_save_on_batch(b) for b in steps]


def test_csv_logger_writes_the_same_file_as_keras(tmp_path):
    logs = [{"loss": 0.5, "acc": 0.25}, {"loss": 0.25, "acc": 0.5, "val_loss": 0.75, "val_acc": 0.125}]
    texts = []
    for name, module in (("ours.csv", tc.callbacks), ("keras.csv", keras().callbacks)):
        callback = module.CSVLogger(str(tmp_path / name))
        callback.on_train_begin()
        for epoch, values in enumerate(logs):
            callback.on_epoch_end(epoch, dict(values))
        callback.on_train_end()
        texts.append((tmp_path / name).read_bytes())
    assert texts[0] == texts[1]
