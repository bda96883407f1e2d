"""Multi-output modules: dict/list losses, loss_weights, per-output metrics, Keras' names and numbers."""

import numpy as np
import pytest
import torch

import torchcompile as tc

keras_oracle = pytest.importorskip("tests.keras_oracle")
keras = keras_oracle.keras

pytestmark = [pytest.mark.keras, pytest.mark.slow]


class TwoHeads(torch.nn.Module):
    def __init__(self, as_dict):
        super().__init__()
        self.a, self.b, self.as_dict = torch.nn.Linear(4, 3), torch.nn.Linear(4, 1), as_dict

    def forward(self, x):
        a, b = torch.softmax(self.a(x), dim=-1), self.b(x)
        return {"out_a": a, "out_b": b} if self.as_dict else (a, b)


def _twins(rng, as_dict):
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, activation="softmax", name="out_a")(inputs)
    b = keras.layers.Dense(1, name="out_b")(inputs)
    k_model = keras.Model(inputs, {"out_a": a, "out_b": b} if as_dict else [a, b])
    module = TwoHeads(as_dict)
    for name, linear in (("out_a", module.a), ("out_b", module.b)):
        kernel = rng.normal(size=(4, linear.out_features)).astype("float32")
        bias = rng.normal(size=(linear.out_features,)).astype("float32")
        k_model.get_layer(name).set_weights([kernel, bias])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(kernel.T))
            linear.bias.copy_(torch.from_numpy(bias))
    return k_model, tc.Model(module, device="cpu")


def test_dict_outputs_match_keras_names_and_values(rng):
    x = rng.normal(size=(37, 4)).astype("float32")
    y = {"out_a": rng.integers(0, 3, size=37), "out_b": rng.normal(size=(37, 1)).astype("float32")}
    k_model, t_model = _twins(rng, as_dict=True)
    config = dict(
        loss={"out_a": "sparse_categorical_crossentropy", "out_b": "mse"},
        metrics={"out_a": ["accuracy"], "out_b": ["mae"]},
        loss_weights={"out_a": 1.0, "out_b": 0.5},
    )
    k_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), **config)
    t_model.compile(optimizer=tc.optimizers.SGD(learning_rate=0.0), **config)
    kwargs = dict(batch_size=8, epochs=1, shuffle=False, verbose=0, validation_split=0.25)
    theirs = k_model.fit(x, y, **kwargs).history
    ours = t_model.fit(x, y, **kwargs).history
    assert set(ours) == set(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
    k_eval = k_model.evaluate(x, y, verbose=0)
    t_eval = t_model.evaluate(x, y, verbose=0)  # [loss, out_a_loss, out_b_loss, metrics...] as Keras
    np.testing.assert_allclose(t_eval, k_eval, rtol=1e-5, atol=1e-6)


def test_list_outputs_take_losses_and_metrics_by_position(rng):
    x = rng.normal(size=(20, 4)).astype("float32")
    y = [rng.integers(0, 3, size=20), rng.normal(size=(20, 1)).astype("float32")]
    _, t_model = _twins(rng, as_dict=False)
    t_model.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], metrics=[["accuracy"], ["mae"]])
    logs = t_model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == sorted(
        ["loss", "output_1_loss", "output_2_loss", "output_1_accuracy", "output_2_mae"]
    )  # Keras sorts
    assert logs["loss"] == pytest.approx(logs["output_1_loss"] + logs["output_2_loss"], rel=1e-6)


def test_loss_list_of_the_wrong_length_is_refused(rng):
    _, t_model = _twins(rng, as_dict=False)
    t_model.compile("sgd", loss=["mse"])
    x = rng.normal(size=(4, 4)).astype("float32")
    with pytest.raises(ValueError, match="1 entries but the module returns 2 outputs"):
        t_model.evaluate(x, [np.zeros(4), np.zeros((4, 1), "float32")], verbose=0)
