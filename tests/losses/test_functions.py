# SPDX-License-Identifier: Apache-2.0
"""Per-sample loss functions against Keras 3's (float32: rtol=1e-5, atol=1e-6)."""

import numpy as np
import pytest
import torch

from tests.losses.cases import FUNCTIONS, TOL, inputs
from torchcompile.losses import functions


def keras_function(name, y_true, y_pred, **kwargs):
    from tests import keras_oracle

    out = getattr(keras_oracle.keras.losses, name)(torch.from_numpy(y_true), torch.from_numpy(y_pred), **kwargs)
    return torch.as_tensor(keras_oracle.to_numpy(out))


def ours(name, y_true, y_pred, **kwargs):
    return getattr(functions, name)(torch.from_numpy(y_true), torch.from_numpy(y_pred), **kwargs)


@pytest.mark.keras
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_matches_keras(name, rng):
    y_true, y_pred = inputs(FUNCTIONS[name], rng)
    torch.testing.assert_close(ours(name, y_true, y_pred), keras_function(name, y_true, y_pred), **TOL)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_returns_one_value_per_sample(name, rng):
    y_true, y_pred = inputs(FUNCTIONS[name], rng)
    assert ours(name, y_true, y_pred).shape == (y_pred.shape[0],)


@pytest.mark.keras
@pytest.mark.parametrize(
    "name,kind,kwargs",
    [
        ("binary_crossentropy", "binary_logits", {"from_logits": True}),
        ("binary_crossentropy", "binary", {"label_smoothing": 0.3}),
        ("binary_crossentropy", "binary", {"axis": 0}),
        ("binary_focal_crossentropy", "binary_logits", {"from_logits": True, "gamma": 0.5}),
        ("binary_focal_crossentropy", "binary", {"apply_class_balancing": True, "alpha": 0.1}),
        ("binary_focal_crossentropy", "binary", {"label_smoothing": 0.2}),
        ("categorical_crossentropy", "categorical_logits", {"from_logits": True}),
        ("categorical_crossentropy", "categorical", {"label_smoothing": 0.2}),
        ("categorical_crossentropy", "categorical", {"axis": 0}),
        ("categorical_focal_crossentropy", "categorical_logits", {"from_logits": True, "label_smoothing": 0.1}),
        ("categorical_focal_crossentropy", "categorical", {"alpha": 1.0, "gamma": 0.0}),
        ("sparse_categorical_crossentropy", "sparse_logits", {"from_logits": True}),
        ("huber", "regression", {"delta": 2.0}),
        ("cosine_similarity", "regression", {"axis": 0}),
    ],
    ids=lambda v: str(v),
)
def test_function_options_match_keras(name, kind, kwargs, rng):
    y_true, y_pred = inputs(kind, rng)
    expected = keras_function(name, y_true, y_pred, **kwargs)
    torch.testing.assert_close(ours(name, y_true, y_pred, **kwargs), expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [0, -1])
def test_sparse_categorical_crossentropy_ignore_class_matches_keras(from_logits, ignore_class, rng):
    y_true, y_pred = inputs("sparse_logits" if from_logits else "sparse", rng)
    y_true[::3] = ignore_class
    kwargs = {"from_logits": from_logits, "ignore_class": ignore_class}
    expected = keras_function("sparse_categorical_crossentropy", y_true, y_pred, **kwargs)
    torch.testing.assert_close(ours("sparse_categorical_crossentropy", y_true, y_pred, **kwargs), expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_class_axis_matches_keras(from_logits, rng):
    y_pred = rng.random((3, 4, 5), dtype=np.float32)  # classes on axis 1
    y_true = rng.integers(0, 4, (3, 5)).astype(np.float32)
    kwargs = {"from_logits": from_logits, "axis": 1}
    expected = keras_function("sparse_categorical_crossentropy", y_true, y_pred, **kwargs)
    torch.testing.assert_close(ours("sparse_categorical_crossentropy", y_true, y_pred, **kwargs), expected, **TOL)


def test_sparse_categorical_crossentropy_ignore_class_gives_finite_gradients(rng):
    y_true, y_pred = inputs("sparse", rng)
    y_true[0] = -1
    y_pred = torch.from_numpy(y_pred).requires_grad_()
    functions.sparse_categorical_crossentropy(torch.from_numpy(y_true), y_pred, ignore_class=-1).sum().backward()
    assert torch.isfinite(y_pred.grad).all() and (y_pred.grad[0] == 0).all()


def test_sparse_categorical_crossentropy_accepts_a_trailing_1(rng):
    y_true, y_pred = inputs("sparse", rng)
    torch.testing.assert_close(
        ours("sparse_categorical_crossentropy", y_true[:, None], y_pred),
        ours("sparse_categorical_crossentropy", y_true, y_pred),
    )


def test_sparse_categorical_crossentropy_rejects_one_hot_labels(rng):
    y_true, y_pred = inputs("categorical", rng)
    with pytest.raises(ValueError, match=r"y_true\.shape=\(8, 4\), y_pred\.shape=\(8, 4\)"):
        ours("sparse_categorical_crossentropy", y_true, y_pred)


@pytest.mark.parametrize("name", ["mean_squared_error", "binary_crossentropy", "hinge", "kl_divergence"])
def test_function_treats_n_against_n_by_1_as_matching(name, rng):
    y_true, y_pred = inputs(FUNCTIONS[name], rng, c=1)
    torch.testing.assert_close(ours(name, y_true[:, 0], y_pred), ours(name, y_true, y_pred))


@pytest.mark.parametrize("name", ["mean_squared_error", "poisson", "categorical_crossentropy"])
def test_function_refuses_a_silent_broadcast(name, rng):
    y_true, y_pred = inputs(FUNCTIONS[name], rng)
    with pytest.raises(ValueError, match=r"\(8,\).*\(8, 4\)"):
        ours(name, y_true[:, 0], y_pred)


def test_categorical_crossentropy_normalises_predictions(rng):
    y_true, y_pred = inputs("categorical", rng)
    torch.testing.assert_close(
        ours("categorical_crossentropy", y_true, 3 * y_pred), ours("categorical_crossentropy", y_true, y_pred)
    )


@pytest.mark.keras
@pytest.mark.parametrize(
    "name",
    [
        "binary_crossentropy",
        "categorical_crossentropy",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "kl_divergence",
    ],
)
def test_function_clips_probabilities_of_0_and_1_as_keras(name):
    y_true = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    y_pred = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    loss = ours(name, y_true, y_pred)
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, keras_function(name, y_true, y_pred), **TOL)


def test_hinge_labels_other_than_0_1_are_not_converted():
    loss = functions.hinge(torch.tensor([[-1.0, 1.0]]), torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(loss, torch.tensor([1.0]))


def test_function_accepts_lists_and_numpy():
    torch.testing.assert_close(
        functions.mean_squared_error([[0.0, 1.0]], np.array([[1.0, 1.0]], np.float32)), torch.tensor([0.5])
    )
