# SPDX-License-Identifier: Apache-2.0
"""Loss classes against Keras 3's: every class and option, every reduction, with and without
sample weights, and rank-mismatched shapes (float32: rtol=1e-5, atol=1e-6)."""

import numpy as np
import pytest
import torch

import torchcompile.losses as losses
from tests.losses.cases import CLASS_CASES, REDUCTIONS, TOL, UNWEIGHTED_REDUCTIONS, WEIGHTED_REDUCTIONS, case_id, inputs


def keras_value(name, y_true, y_pred, sample_weight=None, **kwargs):
    from tests import keras_oracle

    return torch.as_tensor(keras_oracle.loss(name, y_true, y_pred, sample_weight=sample_weight, **kwargs))


def our_value(name, y_true, y_pred, sample_weight=None, **kwargs):
    sw = None if sample_weight is None else torch.from_numpy(sample_weight)
    return getattr(losses, name)(**kwargs)(torch.from_numpy(y_true), torch.from_numpy(y_pred), sample_weight=sw)


def sample_weights(rng, y_pred, kwargs):
    """One weight per sample, or per entry along the other axis when the loss reduces axis 0."""
    n = y_pred.shape[1] if kwargs.get("axis") == 0 else y_pred.shape[0]
    return rng.random(n, dtype=np.float32)


@pytest.mark.keras
@pytest.mark.parametrize("case", CLASS_CASES, ids=case_id)
@pytest.mark.parametrize("reduction", UNWEIGHTED_REDUCTIONS)
def test_class_matches_keras(case, reduction, rng):
    name, kwargs, kind = case
    y_true, y_pred = inputs(kind, rng)
    kwargs = {**kwargs, "reduction": reduction}
    expected = keras_value(name, y_true, y_pred, **kwargs)
    torch.testing.assert_close(our_value(name, y_true, y_pred, **kwargs), expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("case", CLASS_CASES, ids=case_id)
@pytest.mark.parametrize("reduction", WEIGHTED_REDUCTIONS)
def test_class_with_sample_weight_matches_keras(case, reduction, rng):
    name, kwargs, kind = case
    y_true, y_pred = inputs(kind, rng)
    sw = sample_weights(rng, y_pred, kwargs)
    kwargs = {**kwargs, "reduction": reduction}
    expected = keras_value(name, y_true, y_pred, sample_weight=sw, **kwargs)
    torch.testing.assert_close(our_value(name, y_true, y_pred, sample_weight=sw, **kwargs), expected, **TOL)


RANK_CASES = [
    ("MeanSquaredError", "regression"),
    ("MeanAbsoluteError", "regression"),
    ("Huber", "regression"),
    ("LogCosh", "regression"),
    ("BinaryCrossentropy", "binary"),
    ("Hinge", "hinge"),
    ("Poisson", "positive"),
    ("BinaryFocalCrossentropy", "binary"),
]


@pytest.mark.keras
@pytest.mark.parametrize("name,kind", RANK_CASES)
@pytest.mark.parametrize("true_shape,pred_shape", [((8,), (8, 1)), ((8, 1), (8,))])
def test_class_with_rank_mismatched_shapes_matches_keras(name, kind, true_shape, pred_shape, rng):
    y_true, y_pred = inputs(kind, rng, c=1)
    y_true, y_pred = y_true.reshape(true_shape), y_pred.reshape(pred_shape)
    torch.testing.assert_close(our_value(name, y_true, y_pred), keras_value(name, y_true, y_pred), **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_ignore_class_matches_keras(reduction, weighted, from_logits, rng):
    y_true, y_pred = inputs("sparse_logits" if from_logits else "sparse", rng)
    y_true[::3] = -1
    sw = rng.random(len(y_true), dtype=np.float32) if weighted else None
    kwargs = {"from_logits": from_logits, "ignore_class": -1, "reduction": reduction}
    expected = keras_value("SparseCategoricalCrossentropy", y_true, y_pred, sample_weight=sw, **kwargs)
    ours = our_value("SparseCategoricalCrossentropy", y_true, y_pred, sample_weight=sw, **kwargs)
    torch.testing.assert_close(ours, expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sparse_categorical_crossentropy_on_sequences_matches_keras(reduction, rng):
    y_pred = rng.random((4, 5, 3), dtype=np.float32)
    y_true = rng.integers(0, 3, (4, 5)).astype(np.float32)
    y_true[:, -2:] = 0  # padding
    sw = rng.random((4, 5), dtype=np.float32)
    kwargs = {"ignore_class": 0, "reduction": reduction}
    expected = keras_value("SparseCategoricalCrossentropy", y_true, y_pred, sample_weight=sw, **kwargs)
    ours = our_value("SparseCategoricalCrossentropy", y_true, y_pred, sample_weight=sw, **kwargs)
    torch.testing.assert_close(ours, expected, **TOL)


@pytest.mark.keras
def test_sparse_categorical_crossentropy_accepts_integer_labels(rng):
    y_true, y_pred = inputs("sparse", rng)
    ours = losses.SparseCategoricalCrossentropy()(torch.from_numpy(y_true).long(), torch.from_numpy(y_pred))
    torch.testing.assert_close(ours, keras_value("SparseCategoricalCrossentropy", y_true, y_pred), **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("sw_shape", [(8, 1), (1,)])
def test_class_sample_weight_shapes_match_keras(sw_shape, rng):
    y_true, y_pred = inputs("regression", rng)
    sw = rng.random(sw_shape, dtype=np.float32)
    expected = keras_value("MeanSquaredError", y_true, y_pred, sample_weight=sw)
    torch.testing.assert_close(our_value("MeanSquaredError", y_true, y_pred, sample_weight=sw), expected, **TOL)


@pytest.mark.keras
@pytest.mark.parametrize(
    "name",
    [
        "MeanSquaredError",
        "Huber",
        "BinaryCrossentropy",
        "SparseCategoricalCrossentropy",
        "CategoricalCrossentropy",
        "KLDivergence",
    ],
)
def test_class_default_name_matches_keras(name):
    from tests import keras_oracle

    assert getattr(losses, name)().name == getattr(keras_oracle.keras.losses, name)().name


@pytest.mark.keras
@pytest.mark.parametrize("case", CLASS_CASES, ids=case_id)
def test_class_config_matches_keras(case):
    from tests import keras_oracle

    name, kwargs, _ = case
    theirs = getattr(keras_oracle.keras.losses, name)(**kwargs).get_config()
    ours = getattr(losses, name)(**kwargs).get_config()
    theirs.pop("dtype", None)
    assert {k: ours[k] for k in theirs} == theirs


@pytest.mark.parametrize("case", CLASS_CASES, ids=case_id)
def test_class_config_round_trips(case, rng):
    name, kwargs, kind = case
    loss = getattr(losses, name)(reduction="sum", **kwargs)
    clone = type(loss).from_config(loss.get_config())
    y_true, y_pred = (torch.from_numpy(a) for a in inputs(kind, rng))
    assert clone.get_config() == loss.get_config()
    torch.testing.assert_close(clone(y_true, y_pred), loss(y_true, y_pred))


@pytest.mark.parametrize(
    "name,expected",
    [
        ("BinaryCrossentropy", True),
        ("CategoricalCrossentropy", True),
        ("SparseCategoricalCrossentropy", True),
        ("BinaryFocalCrossentropy", True),
        ("CategoricalFocalCrossentropy", True),
        ("MeanSquaredError", False),
        ("KLDivergence", False),
        ("Poisson", False),
        ("Hinge", False),
    ],
)
def test_class_expects_probabilities_unless_from_logits(name, expected):
    assert getattr(losses, name)().expects_probabilities is expected
    if expected:
        assert getattr(losses, name)(from_logits=True).expects_probabilities is False


@pytest.mark.parametrize("name", ["SparseCategoricalCrossentropy", "CategoricalCrossentropy", "MeanSquaredError"])
def test_class_sparse_labels_only_for_sparse_crossentropy(name):
    assert getattr(losses, name)().sparse_labels is (name == "SparseCategoricalCrossentropy")


def test_class_keeps_keras_attributes():
    loss = losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.3, gamma=1.5, from_logits=True)
    assert (loss.apply_class_balancing, loss.alpha, loss.gamma, loss.from_logits) == (True, 0.3, 1.5, True)
