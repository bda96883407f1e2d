# SPDX-License-Identifier: Apache-2.0
"""Probabilistic and hinge metrics against Keras 3 after NUM_BATCHES seeded updates."""

import numpy as np
import pytest

import torchcompile.metrics as tcm
from tests.metrics.cases import Case, batches, keras_result, run

CASES = [
    Case("BinaryCrossentropy", data="binary", keras_takes_rank1=False),
    Case("BinaryCrossentropy", {"from_logits": True}, data="binary_logits", keras_takes_rank1=False),
    Case("BinaryCrossentropy", {"label_smoothing": 0.1}, data="multilabel"),
    Case("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, data="multilabel_logits"),
    Case("CategoricalCrossentropy", data="onehot"),
    Case("CategoricalCrossentropy", {"from_logits": True}, data="onehot_logits"),
    Case("CategoricalCrossentropy", {"label_smoothing": 0.1}, data="onehot"),
    Case("SparseCategoricalCrossentropy", data="sparse"),
    Case("SparseCategoricalCrossentropy", {"from_logits": True}, data="sparse_logits"),
    Case("SparseCategoricalCrossentropy", {"ignore_class": 1}, data="sparse"),
    Case("SparseCategoricalCrossentropy", {"from_logits": True, "ignore_class": 0}, data="sparse_logits"),
    Case("KLDivergence", data="onehot"),
    Case("KLDivergence", data="multilabel"),
    Case("Poisson", data="positive", keras_takes_rank1=False),  # Keras: (N,)-(N,1) broadcasts
    Case("Poisson", data="multilabel"),
    Case("Hinge", data="hinge"),
    Case("Hinge", data="multilabel_logits"),  # {0, 1} labels read as {-1, 1}
    Case("SquaredHinge", data="hinge"),
    Case("SquaredHinge", data="multilabel_logits"),
    Case("CategoricalHinge", data="onehot_logits"),
]


@pytest.mark.keras
@pytest.mark.parametrize("rank1", [False, True], ids=["labels(N,1)", "labels(N,)"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_probabilistic_matches_keras(case, weighted, rank1, rng):
    """Tolerance: float32 logs summed over 4 x 16 samples, rtol=1e-5, atol=1e-6."""
    updates = batches(case.data, rng, weighted=weighted, rank1=rank1)
    np.testing.assert_allclose(run(case.ours(), updates), keras_result(case, updates), rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize(
    "cls",
    [
        tcm.BinaryCrossentropy,
        tcm.CategoricalCrossentropy,
        tcm.SparseCategoricalCrossentropy,
        tcm.KLDivergence,
        tcm.Poisson,
        tcm.Hinge,
        tcm.SquaredHinge,
        tcm.CategoricalHinge,
    ],
)
def test_probabilistic_lower_is_better_and_config_round_trips(cls):
    m = cls()
    assert cls.higher_is_better is False and cls.from_config(m.get_config()).get_config() == m.get_config()
