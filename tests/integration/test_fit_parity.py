"""History parity with Keras 3: the same Dense layer in both, learning rate 0, same numbers."""

import numpy as np
import pytest
import torch

import torchcompile as tc

keras_oracle = pytest.importorskip("tests.keras_oracle")
keras = keras_oracle.keras

pytestmark = [pytest.mark.keras, pytest.mark.slow]

N, FEATURES, CLASSES, BATCH = 103, 5, 3, 16  # 16 does not divide 103 (nor the 82/21 split)


def _data(rng, kind):
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    labels = rng.integers(0, CLASSES, size=N)
    if kind == "binary":
        return x, (labels == 0).astype("float32").reshape(-1, 1)
    if kind == "categorical":
        return x, np.eye(CLASSES, dtype="float32")[labels]
    return x, labels


CASES = {
    "sparse": ("sparse_categorical_crossentropy", CLASSES, "softmax"),
    "categorical": ("categorical_crossentropy", CLASSES, "softmax"),
    "binary": ("binary_crossentropy", 1, "sigmoid"),
    "mse": ("mse", CLASSES, None),
}


def _twins(rng, units, activation):
    kernel = rng.normal(size=(FEATURES, units)).astype("float32") * 0.5
    bias = rng.normal(size=(units,)).astype("float32") * 0.1
    k_model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(units, activation=activation)])
    k_model.layers[0].set_weights([kernel, bias])
    linear = torch.nn.Linear(FEATURES, units)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))
    head = {"softmax": [torch.nn.Softmax(dim=-1)], "sigmoid": [torch.nn.Sigmoid()], None: []}[activation]
    return k_model, tc.Model(torch.nn.Sequential(linear, *head), device="cpu")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("validation", [None, "split", "data"])
def test_fit_history_matches_keras_with_frozen_weights(case, validation, rng):
    loss, units, activation = CASES[case]
    x, y = _data(rng, "binary" if case == "binary" else "categorical" if case in ("categorical", "mse") else "sparse")
    if case == "mse":
        y = rng.normal(size=(N, CLASSES)).astype("float32")
    metrics = ["mae"] if case == "mse" else ["accuracy"]
    k_model, t_model = _twins(rng, units, activation)
    k_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=loss, metrics=metrics)
    t_model.compile(optimizer=tc.optimizers.SGD(learning_rate=0.0), loss=loss, metrics=metrics)
    kwargs = dict(batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    if validation == "split":
        kwargs["validation_split"] = 0.2
    elif validation == "data":
        kwargs["validation_data"] = (x[:40] * 2.0, y[:40])
    theirs = k_model.fit(x, y, **kwargs).history
    ours = t_model.fit(x, y, **kwargs).history
    assert list(ours) == list(theirs)  # same keys in the same (sorted) order as Keras 3
    for key in theirs:  # float32 sums in a different order: rtol 1e-5
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("case", sorted(CASES))
def test_evaluate_matches_keras(case, rng):
    loss, units, activation = CASES[case]
    x, y = _data(rng, "binary" if case == "binary" else "categorical" if case in ("categorical", "mse") else "sparse")
    k_model, t_model = _twins(rng, units, activation)
    k_model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"] if case != "mse" else ["mae"])
    t_model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"] if case != "mse" else ["mae"])
    theirs = k_model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    ours = t_model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    assert list(ours) == list(theirs)  # same keys in the same (sorted) order as Keras 3
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_fit_one_sgd_step_matches_keras(rng):
    """With a real learning rate the weights after one epoch of SGD agree too."""
    x, y = _data(rng, "sparse")
    k_model, t_model = _twins(rng, CLASSES, "softmax")
    k_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    t_model.compile(optimizer=tc.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    theirs = k_model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0).history
    ours = t_model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    kernel, _ = k_model.layers[0].get_weights()
    np.testing.assert_allclose(t_model.module[0].weight.detach().numpy().T, kernel, rtol=1e-4, atol=1e-6)


def test_weighted_metrics_and_class_weight_match_keras_names_and_values(rng):
    x, y = _data(rng, "sparse")
    k_model, t_model = _twins(rng, CLASSES, "softmax")
    config = dict(
        loss="sparse_categorical_crossentropy", metrics=["accuracy", "accuracy"], weighted_metrics=["accuracy"]
    )
    k_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), **config)
    t_model.compile(optimizer=tc.optimizers.SGD(learning_rate=0.0), **config)
    kwargs = dict(batch_size=BATCH, shuffle=False, verbose=0, class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    theirs = k_model.fit(x, y, **kwargs).history
    ours = t_model.fit(x, y, **kwargs).history
    assert set(ours) == set(theirs) == {"loss", "accuracy", "accuracy_1", "weighted_accuracy"}
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
