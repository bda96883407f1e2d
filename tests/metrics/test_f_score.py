# SPDX-License-Identifier: Apache-2.0
"""FBetaScore and F1Score against Keras 3 after NUM_BATCHES seeded updates."""

import numpy as np
import pytest
import torch

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches, keras_result, run

CASES = [
    Case(cls, {"average": average, **extra}, data=data)
    for cls, extra in [
        ("F1Score", {}),
        ("F1Score", {"threshold": 0.5}),
        ("FBetaScore", {"beta": 2.0}),
        ("FBetaScore", {"beta": 0.5, "threshold": 0.3}),
    ]
    for average in (None, "micro", "macro", "weighted")
    for data in ("multilabel", "onehot")
]


@pytest.mark.keras
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.id}-{c.data}")
def test_f_score_matches_keras(case, weighted, rng):
    """Tolerance: float32 ratios of weighted counts, rtol=1e-5, atol=1e-6."""
    updates = batches(case.data, rng, weighted=weighted)
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), rtol=case.rtol, atol=case.atol)


def test_f1_score_without_average_returns_one_score_per_class():
    m = tcm.F1Score()
    m.update_state(torch.eye(3), torch.eye(3))
    assert m.result().shape == (3,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"average": "mean"}, "average='mean'"),
        ({"beta": 2}, "beta=2"),
        ({"beta": -1.0}, "beta=-1.0"),
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"threshold": 1}, "threshold=1"),
    ],
)
def test_f_beta_score_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tcm.FBetaScore(**kwargs)


def test_f_beta_score_refuses_1d_inputs():
    with pytest.raises(ValueError, match=r"y_true.shape=\(4,\)"):
        tcm.FBetaScore().update_state(torch.ones(4), torch.ones(4))


def test_f1_score_default_names_and_config():
    assert tcm.F1Score().name == "f1_score" and tcm.FBetaScore().name == "fbeta_score"
    assert "beta" not in tcm.F1Score().get_config()
    m = tcm.FBetaScore(average="macro", beta=0.5, threshold=0.4)
    assert tcm.FBetaScore.from_config(m.get_config()).get_config() == m.get_config()
