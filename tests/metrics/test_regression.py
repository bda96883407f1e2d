# SPDX-License-Identifier: Apache-2.0
"""Regression metrics against Keras 3 after NUM_BATCHES seeded updates."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches, keras_result, run

CASES = [
    Case("MeanSquaredError"),
    Case("MeanSquaredError", data="multioutput"),
    Case("RootMeanSquaredError"),
    Case("RootMeanSquaredError", data="multioutput"),
    Case("MeanAbsoluteError"),
    Case("MeanAbsoluteError", data="multioutput"),
    Case("MeanAbsolutePercentageError", data="positive", rtol=1e-5, atol=1e-4),  # values ~100
    Case("MeanSquaredLogarithmicError", data="positive"),
    Case("CosineSimilarity", data="multioutput"),
    Case("LogCoshError"),
    Case("LogCoshError", data="multioutput"),
    Case("R2Score", data="multioutput"),
    Case("R2Score", {"class_aggregation": "variance_weighted_average"}, data="multioutput"),
    Case("R2Score", {"class_aggregation": None}, data="multioutput"),
    Case("R2Score", {"num_regressors": 2}, data="multioutput"),
    Case("R2Score", {"num_regressors": 100}, data="multioutput"),  # too many: plain R2, as Keras
]
TOL = "float32 accumulation over 4 x 16 samples: rtol=1e-5, atol=1e-6 unless the case says"


@pytest.mark.keras
@pytest.mark.parametrize("rank1", [False, True], ids=["y_true(N,1)", "y_true(N,)"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_regression_matches_keras(case, weighted, rank1, rng):
    updates = batches(case.data, rng, weighted=weighted, rank1=rank1)
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), rtol=case.rtol, atol=case.atol)


@pytest.mark.keras
def test_cosine_similarity_axis_0_matches_keras(rng):
    case = Case("CosineSimilarity", {"axis": 0})
    updates = batches("multioutput", rng)  # unweighted: a per-sample weight cannot apply along axis 0
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_r2_score_single_output_matches_keras(rng):
    updates = batches("regression", rng)  # (N, 1) against (N, 1)
    np.testing.assert_allclose(
        run(tcm.R2Score(), updates), run(Case("R2Score").theirs(), updates), rtol=1e-5, atol=1e-6
    )


def test_r2_score_refuses_1d_inputs_and_names_shapes():
    with pytest.raises(ValueError, match=r"y_true.shape=\(4,\)"):
        tcm.R2Score().update_state(torch.zeros(4), torch.zeros(4))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"class_aggregation": "sum"}, "class_aggregation='sum'"), ({"num_regressors": -1}, "num_regressors=-1")],
)
def test_r2_score_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tcm.R2Score(**kwargs)


def test_r2_score_result_is_a_vector_without_aggregation():
    m = tcm.R2Score(class_aggregation=None)
    m.update_state(torch.randn(8, 3), torch.randn(8, 3))
    assert m.result().shape == (3,)


def test_cosine_similarity_is_positive_for_aligned_vectors():
    torch.testing.assert_close(
        tcm.cosine_similarity(torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 4.0]])), torch.tensor([1.0])
    )


@pytest.mark.parametrize(
    "cls, name",
    [
        (tcm.LogCoshError, "logcosh"),
        (tcm.MeanSquaredError, "mean_squared_error"),
        (tcm.RootMeanSquaredError, "root_mean_squared_error"),
    ],
)
def test_regression_default_names_are_keras(cls, name):
    assert cls().name == name and cls.higher_is_better is False
