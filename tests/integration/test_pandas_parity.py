# SPDX-License-Identifier: Apache-2.0
"""fit on pandas objects gives Keras 3's History: the same Dense layer in both, frozen weights (issue 15)."""

import numpy as np
import pytest
import torch

import torchcompile as tc

keras_oracle = pytest.importorskip("tests.keras_oracle")
keras = keras_oracle.keras
pd = pytest.importorskip("pandas")

pytestmark = [pytest.mark.keras, pytest.mark.slow]

N, BATCH = 103, 16


def _frame(rng):
    """The Auto MPG tutorial's shape: float64 and integer columns, and a float target column."""
    frame = pd.DataFrame(
        {
            "displacement": rng.normal(200, 50, N),
            "horsepower": rng.normal(100, 20, N),
            "cylinders": rng.integers(3, 9, N),
            "origin_usa": rng.integers(0, 2, N).astype(bool),
        }
    )
    frame["mpg"] = 40 - frame["displacement"] / 10 + rng.normal(0, 1, N)
    return frame


def _twins(rng, features):
    kernel = rng.normal(size=(features, 1)).astype("float32") * 0.05
    bias = rng.normal(size=(1,)).astype("float32")
    k_model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(1)])
    k_model.layers[0].set_weights([kernel, bias])
    linear = torch.nn.Linear(features, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))
    return k_model, tc.Model(linear, device="cpu")


@pytest.mark.parametrize("validation", [None, "split", "data"])
def test_fit_on_a_dataframe_matches_keras_history(validation, rng):
    frame = _frame(rng)
    target = frame.pop("mpg")
    k_model, t_model = _twins(rng, frame.shape[1])
    for model, sgd in ((k_model, keras.optimizers.SGD), (t_model, tc.optimizers.SGD)):
        model.compile(optimizer=sgd(learning_rate=0.0), loss="mse", metrics=["mae"])
    kwargs = dict(batch_size=BATCH, epochs=2, shuffle=False, verbose=0, sample_weight=frame["cylinders"] / 4)
    if validation == "split":
        kwargs["validation_split"] = 0.2
    elif validation == "data":
        kwargs["validation_data"] = (frame[:40] * 1.5, target[:40])
    theirs = k_model.fit(frame, target, **kwargs).history
    ours = t_model.fit(frame, target, **kwargs).history
    assert set(ours) == set(theirs)
    for key in theirs:  # float32 sums in a different order
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_predict_on_a_dataframe_matches_keras(rng):
    frame = _frame(rng).drop(columns="mpg")
    k_model, t_model = _twins(rng, frame.shape[1])
    np.testing.assert_allclose(
        t_model.predict(frame, batch_size=BATCH, verbose=0), k_model.predict(frame, batch_size=BATCH, verbose=0),
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip
