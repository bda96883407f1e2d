# SPDX-License-Identifier: Apache-2.0
"""Shared inputs for the loss tests: one generator per kind of data, and the table of cases.

Tolerance for every comparison with Keras: float32, rtol=1e-5, atol=1e-6 (``TOL``).
"""

from __future__ import annotations

import numpy as np

TOL = {"rtol": 1e-5, "atol": 1e-6}
N, C = 8, 4
REDUCTIONS = ["sum_over_batch_size", "sum", "none", None, "mean_with_sample_weight"]
# Every reduction is covered per class across the unweighted and weighted tests; the pairs left
# out ("none" vs None, mean_with_sample_weight without weights) take the same code path.
UNWEIGHTED_REDUCTIONS = ["sum_over_batch_size", "sum", None]
WEIGHTED_REDUCTIONS = ["sum_over_batch_size", "sum", "none", "mean_with_sample_weight"]


def inputs(kind: str, rng: np.random.Generator, n: int = N, c: int = C) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) float32 arrays of a kind: regression, positive, binary, binary_logits,
    categorical, categorical_logits, sparse, sparse_logits, hinge."""
    f32 = np.float32
    if kind == "regression":
        return rng.normal(size=(n, c)).astype(f32), rng.normal(size=(n, c)).astype(f32)
    if kind == "positive":
        return rng.random((n, c), dtype=f32), rng.random((n, c), dtype=f32) + f32(0.01)
    if kind == "binary":
        return rng.integers(0, 2, (n, c)).astype(f32), rng.random((n, c), dtype=f32)
    if kind == "binary_logits":
        return rng.integers(0, 2, (n, c)).astype(f32), (3 * rng.normal(size=(n, c))).astype(f32)
    if kind == "hinge":
        return rng.choice([-1.0, 1.0], (n, c)).astype(f32), rng.normal(size=(n, c)).astype(f32)
    labels = rng.integers(0, c, n)
    logits = (2 * rng.normal(size=(n, c))).astype(f32)
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(f32)
    pred = logits if kind.endswith("_logits") else probs
    if kind.startswith("categorical"):
        return np.eye(c, dtype=f32)[labels], pred
    if kind.startswith("sparse"):
        return labels.astype(f32), pred
    raise ValueError(f"unknown kind {kind!r}")


# (Keras class name, class kwargs, kind of inputs). The function id of each class is in FUNCTIONS.
CLASS_CASES = [
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "positive"),
    ("CosineSimilarity", {}, "regression"),
    ("CosineSimilarity", {"axis": 0}, "regression"),
    ("Huber", {}, "regression"),
    ("Huber", {"delta": 0.5}, "regression"),
    ("LogCosh", {}, "regression"),
    ("Hinge", {}, "hinge"),
    ("Hinge", {}, "binary_logits"),
    ("SquaredHinge", {}, "hinge"),
    ("SquaredHinge", {}, "binary_logits"),
    ("CategoricalHinge", {}, "categorical_logits"),
    ("KLDivergence", {}, "positive"),
    ("Poisson", {}, "positive"),
    ("BinaryCrossentropy", {}, "binary"),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True}, "binary_logits"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary_logits"),
    ("BinaryCrossentropy", {"axis": 0}, "binary"),
    ("BinaryFocalCrossentropy", {}, "binary"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0}, "binary"),
    ("BinaryFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary_logits"),
    ("CategoricalCrossentropy", {}, "categorical"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "categorical"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical_logits"),
    ("CategoricalCrossentropy", {"from_logits": True, "axis": 0}, "categorical_logits"),
    ("CategoricalFocalCrossentropy", {}, "categorical"),
    ("CategoricalFocalCrossentropy", {"alpha": 0.5, "gamma": 1.0, "label_smoothing": 0.1}, "categorical"),
    ("CategoricalFocalCrossentropy", {"from_logits": True}, "categorical_logits"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits"),
]

# Function id → kind of inputs, for the per-sample function tests.
FUNCTIONS = {
    "mean_squared_error": "regression",
    "mean_absolute_error": "regression",
    "mean_absolute_percentage_error": "regression",
    "mean_squared_logarithmic_error": "positive",
    "cosine_similarity": "regression",
    "huber": "regression",
    "log_cosh": "regression",
    "hinge": "hinge",
    "squared_hinge": "hinge",
    "categorical_hinge": "categorical_logits",
    "kl_divergence": "positive",
    "poisson": "positive",
    "binary_crossentropy": "binary",
    "binary_focal_crossentropy": "binary",
    "categorical_crossentropy": "categorical",
    "categorical_focal_crossentropy": "categorical",
    "sparse_categorical_crossentropy": "sparse",
}


def case_id(case: tuple) -> str:
    name, kwargs, kind = case
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({args})-{kind}"
