# SPDX-License-Identifier: Apache-2.0
"""tc.losses.get on every kind of identifier, and every id in api.md against Keras 3
(float32: rtol=1e-5, atol=1e-6)."""

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile.losses as losses
from tests.losses.cases import FUNCTIONS, TOL, inputs

# api.md's ids → the Keras 3 id computing the same thing (Keras 3 dropped the Keras 2 spellings).
API_IDS = {
    "binary_crossentropy": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "mean_squared_error": "mean_squared_error",
    "mse": "mse",
    "MSE": "MSE",
    "mean_absolute_error": "mean_absolute_error",
    "mae": "mae",
    "mean_absolute_percentage_error": "mean_absolute_percentage_error",
    "mape": "mape",
    "mean_squared_logarithmic_error": "mean_squared_logarithmic_error",
    "msle": "msle",
    "huber": "huber",
    "log_cosh": "log_cosh",
    "logcosh": "log_cosh",
    "hinge": "hinge",
    "squared_hinge": "squared_hinge",
    "categorical_hinge": "categorical_hinge",
    "kl_divergence": "kl_divergence",
    "kld": "kld",
    "kullback_leibler_divergence": "kl_divergence",
    "poisson": "poisson",
    "cosine_similarity": "cosine_similarity",
    "binary_focal_crossentropy": "binary_focal_crossentropy",
    "categorical_focal_crossentropy": "categorical_focal_crossentropy",
    "bce": "bce",
}
CANONICAL = {
    "mse": "mean_squared_error",
    "MSE": "mean_squared_error",
    "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error",
    "logcosh": "log_cosh",
    "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence",
    "bce": "binary_crossentropy",
}


@pytest.mark.keras
@pytest.mark.parametrize("identifier", sorted(API_IDS))
def test_get_id_matches_keras(identifier, rng):
    # keras_oracle.loss wraps functions with keras.losses.LossFunctionWrapper, which Keras 3.15
    # does not export; its keras.src home is used here instead.
    from keras.src.losses import LossFunctionWrapper

    from tests import keras_oracle

    y_true, y_pred = inputs(FUNCTIONS[CANONICAL.get(identifier, identifier)], rng)
    keras_loss = LossFunctionWrapper(keras_oracle.keras.losses.get(API_IDS[identifier]))
    expected = torch.as_tensor(keras_oracle.to_numpy(keras_loss(y_true, y_pred)))
    torch.testing.assert_close(losses.get(identifier)(y_true, y_pred), expected, **TOL)


@pytest.mark.parametrize("identifier", sorted(API_IDS))
def test_get_id_is_named_after_its_function(identifier):
    assert losses.get(identifier).name == CANONICAL.get(identifier, identifier)


@pytest.mark.parametrize(
    "name",
    [
        "MeanSquaredError",
        "Huber",
        "LogCosh",
        "KLDivergence",
        "CosineSimilarity",
        "BinaryFocalCrossentropy",
        "CategoricalFocalCrossentropy",
        "SparseCategoricalCrossentropy",
    ],
)
def test_get_class_name_instantiates_the_class(name):
    assert type(losses.get(name)) is getattr(losses, name)


def test_get_none_returns_none():
    assert losses.get(None) is None


def test_get_loss_instance_is_returned_as_is():
    loss = losses.Huber(delta=2.0)
    assert losses.get(loss) is loss


def test_get_loss_subclass_is_instantiated():
    assert isinstance(losses.get(losses.CategoricalHinge), losses.CategoricalHinge)


def test_get_config_dict_builds_the_class():
    loss = losses.get({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}})
    assert isinstance(loss, losses.CategoricalCrossentropy) and loss.from_logits


def test_get_config_dict_of_a_function_wrapper_round_trips():
    wrapper = losses.get("huber")
    clone = losses.get({"class_name": "LossFunctionWrapper", "config": wrapper.get_config()})
    assert clone.fn is losses.huber and clone.name == "huber"


def test_get_torch_loss_module_is_adapted():
    module = nn.MSELoss()
    loss = losses.get(module)
    assert isinstance(loss, losses.TorchLoss) and loss.module is module


def test_get_function_is_wrapped_and_named_after_it():
    def my_loss(y_true, y_pred):
        return torch.mean(torch.abs(y_true - y_pred), dim=-1)

    loss = losses.get(my_loss)
    assert isinstance(loss, losses.LossFunctionWrapper) and loss.name == "my_loss"


def test_get_function_is_called_in_keras_order():
    loss = losses.get(lambda y_true, y_pred: y_true - y_pred)
    assert float(loss(torch.tensor([3.0]), torch.tensor([1.0]))) == 2.0


def test_get_other_type_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="int"):
        losses.get(3)


def test_get_unknown_id_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean 'mean_squared_error'"):
        losses.get("mean_sqared_error")


def test_get_ids_are_case_sensitive():
    with pytest.raises(ValueError, match="Unknown loss 'Mse'"):
        losses.get("Mse")


@pytest.mark.parametrize("identifier", ["crossentropy", "ce"])
def test_get_shape_dependent_id_says_compile_resolves_it(identifier):
    with pytest.raises(ValueError, match="only Model.compile resolves it"):
        losses.get(identifier)


@pytest.mark.parametrize(
    "identifier,expected",
    [
        ("binary_crossentropy", True),
        ("sparse_categorical_crossentropy", True),
        ("categorical_focal_crossentropy", True),
        ("mse", False),
        ("kld", False),
    ],
)
def test_get_function_id_keeps_expects_probabilities(identifier, expected):
    assert losses.get(identifier).expects_probabilities is expected


def test_get_sparse_id_has_sparse_labels():
    assert losses.get("sparse_categorical_crossentropy").sparse_labels
    assert not losses.get("categorical_crossentropy").sparse_labels


def test_get_result_returns_a_0d_tensor(rng):
    y_true, y_pred = inputs("regression", rng)
    assert losses.get("mse")(np.asarray(y_true), y_pred).shape == ()
