# SPDX-License-Identifier: Apache-2.0
"""Accuracy metrics against Keras 3 after NUM_BATCHES seeded updates."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches, keras_result, run

CASES = [
    Case("Accuracy", data="exact"),
    Case("BinaryAccuracy", data="binary"),
    Case("BinaryAccuracy", {"threshold": 0.3}, data="binary"),
    Case("BinaryAccuracy", {"threshold": 0.0}, data="binary_logits"),
    Case("BinaryAccuracy", data="multilabel"),
    Case("CategoricalAccuracy", data="onehot"),
    Case("CategoricalAccuracy", data="onehot_logits"),
    Case("SparseCategoricalAccuracy", data="sparse"),
    Case("SparseCategoricalAccuracy", data="sparse_logits"),
    Case("TopKCategoricalAccuracy", data="onehot"),
    Case("TopKCategoricalAccuracy", {"k": 2}, data="onehot_logits"),
    Case("SparseTopKCategoricalAccuracy", data="sparse"),
    Case("SparseTopKCategoricalAccuracy", {"k": 2}, data="sparse_logits"),
]
TOL = {"rtol": 1e-6, "atol": 1e-7}  # match rates of float32 counts: exact up to rounding


@pytest.mark.keras
@pytest.mark.parametrize("rank1", [True, False], ids=["labels(N,)", "labels(N,1)"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_accuracy_matches_keras(case, weighted, rank1, rng):
    updates = batches(case.data, rng, weighted=weighted, rank1=rank1)
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), **TOL)


@pytest.mark.keras
@pytest.mark.parametrize("k", [1, 3])
def test_sparse_top_k_accuracy_from_sorted_ids_matches_keras(k, rng):
    updates = []
    for _ in range(4):
        scores = rng.random((16, 5), dtype="float32")
        updates.append((rng.integers(0, 5, 16), np.argsort(-scores, axis=-1)))
    case = Case("SparseTopKCategoricalAccuracy", {"k": k, "from_sorted_ids": True})
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), **TOL)


@pytest.mark.parametrize(
    "fn, y_true, y_pred, expected",
    [
        (tcm.accuracy, [1, 2, 3, 4], [0, 2, 3, 4], [0, 1, 1, 1]),
        (tcm.binary_accuracy, [[1], [0]], [[0.7], [0.6]], [[1], [0]]),
        (tcm.categorical_accuracy, [[0, 1], [1, 0]], [[0.2, 0.8], [0.1, 0.9]], [1, 0]),
        (tcm.sparse_categorical_accuracy, [[1], [0]], [[0.2, 0.8], [0.1, 0.9]], [1, 0]),
        (tcm.top_k_categorical_accuracy, [[0, 0, 1], [0, 1, 0]], [[0.1, 0.5, 0.4], [0.5, 0.1, 0.4]], [1, 0]),
        (tcm.sparse_top_k_categorical_accuracy, [2, 1], [[0.1, 0.5, 0.4], [0.5, 0.1, 0.4]], [1, 0]),
    ],
)
def test_accuracy_functions_return_per_sample_matches(fn, y_true, y_pred, expected):
    kwargs = {"k": 2} if "top_k" in fn.__name__ else {}
    out = fn(torch.tensor(y_true), torch.tensor(y_pred), **kwargs)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize(
    "cls",
    [
        tcm.Accuracy,
        tcm.BinaryAccuracy,
        tcm.CategoricalAccuracy,
        tcm.SparseCategoricalAccuracy,
        tcm.TopKCategoricalAccuracy,
        tcm.SparseTopKCategoricalAccuracy,
    ],
)
def test_accuracy_higher_is_better(cls):
    assert cls.higher_is_better is True


def test_binary_accuracy_name_argument_is_kept():
    assert tcm.BinaryAccuracy(name="acc").name == "acc"


@pytest.mark.keras
@pytest.mark.parametrize("label_dtype", [torch.int64, torch.int32, torch.uint8])
def test_sparse_categorical_accuracy_on_integer_label_tensors_matches_keras(label_dtype, rng):
    # The engine's hot path (tensors, integer labels (N,), unweighted) counts matches directly.
    case = Case("SparseCategoricalAccuracy", data="sparse_logits")
    updates = batches("sparse_logits", rng, rank1=True)
    ours = case.ours()
    for y_true, y_pred in updates:
        ours.update_state(torch.from_numpy(y_true).to(label_dtype), torch.from_numpy(y_pred))
    np.testing.assert_allclose(ours.result().numpy(), keras_result(case, updates), **TOL)


def test_sparse_categorical_accuracy_mixes_unweighted_tensor_and_weighted_updates(rng):
    fast, general = tcm.SparseCategoricalAccuracy(), tcm.SparseCategoricalAccuracy()
    for weighted in (False, True, False):
        for y_true, y_pred, *sw in batches("sparse_logits", rng, rank1=True, weighted=weighted):
            y_true, y_pred = torch.from_numpy(y_true), torch.from_numpy(y_pred)
            sample_weight = torch.from_numpy(sw[0]) if sw else None
            fast.update_state(y_true, y_pred, sample_weight)
            general.update_state(y_true.numpy(), y_pred.numpy(), None if sw == [] else sw[0])
    torch.testing.assert_close(fast.total, general.total)
    torch.testing.assert_close(fast.count, general.count)
