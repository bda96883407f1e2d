# SPDX-License-Identifier: Apache-2.0
"""The metric catalogue shared by the metric tests, and a MetricTester-style runner.

Each ``Case`` names a class (the same name in ``tc.metrics`` and ``keras.metrics``), its
constructor arguments and the kind of data it takes. ``batches`` draws ``NUM_BATCHES``
seeded updates of that kind; ``run`` feeds them to a metric and returns ``result()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import torchcompile.metrics as tcm

NUM_BATCHES = 4
BATCH = 16
CLASSES = 5


@dataclass(frozen=True)
class Case:
    """One metric configuration, built the same way from ``tc.metrics`` and ``keras.metrics``."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: str = "regression"
    rtol: float = 1e-5
    atol: float = 1e-6
    keras_takes_rank1: bool = True  # False: Keras refuses (N,) labels, so it gets them as (N, 1)

    @property
    def id(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.cls}({args})"

    def ours(self) -> tcm.Metric:
        return getattr(tcm, self.cls)(**self.kwargs)

    def theirs(self) -> Any:
        from tests import keras_oracle

        return getattr(keras_oracle.keras.metrics, self.cls)(**self.kwargs)


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    logits = rng.normal(size=shape).astype("float32")
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype("float32")


def _draw(kind: str, rng: np.random.Generator, rank1: bool) -> tuple[np.ndarray, np.ndarray]:
    """One (y_true, y_pred) pair; ``rank1`` picks (N,) over (N, 1) where the kind allows both."""
    n, c = BATCH, CLASSES
    col = (n,) if rank1 else (n, 1)
    if kind == "values":
        return rng.normal(size=(n, 3)).astype("float32"), None
    if kind == "exact":
        return rng.integers(0, 3, col).astype("float32"), rng.integers(0, 3, col).astype("float32")
    if kind == "binary":
        return rng.integers(0, 2, col).astype("float32"), rng.random((n, 1), dtype="float32")
    if kind == "binary_logits":
        return rng.integers(0, 2, col).astype("float32"), rng.normal(size=(n, 1)).astype("float32")
    if kind == "multilabel":
        return rng.integers(0, 2, (n, c)).astype("float32"), rng.random((n, c), dtype="float32")
    if kind == "multilabel_logits":
        return rng.integers(0, 2, (n, c)).astype("float32"), rng.normal(size=(n, c)).astype("float32")
    if kind in ("onehot", "onehot_logits"):
        y_true = np.eye(c, dtype="float32")[rng.integers(0, c, n)]
        y_pred = _probs(rng, (n, c)) if kind == "onehot" else rng.normal(size=(n, c)).astype("float32")
        return y_true, y_pred
    if kind in ("sparse", "sparse_logits"):
        y_pred = _probs(rng, (n, c)) if kind == "sparse" else rng.normal(size=(n, c)).astype("float32")
        return rng.integers(0, c, col), y_pred
    if kind == "sparse_ids":
        return rng.integers(0, c, col), rng.integers(0, c, col)
    if kind == "positive":
        return rng.random(col, dtype="float32") * 3, rng.random((n, 1), dtype="float32") * 3
    if kind == "hinge":
        return rng.choice([-1.0, 1.0], (n, 3)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")
    if kind == "multioutput":
        y_true = rng.normal(size=(n, 3)).astype("float32")
        return y_true, (y_true + 0.5 * rng.normal(size=(n, 3))).astype("float32")
    assert kind == "regression", kind
    y_true = rng.normal(size=col).astype("float32")
    return y_true, (y_true.reshape(n, 1) + 0.5 * rng.normal(size=(n, 1))).astype("float32")


def batches(
    kind: str, rng: np.random.Generator, *, weighted: bool = False, rank1: bool = False
) -> list[tuple[np.ndarray, ...]]:
    """``NUM_BATCHES`` update_state argument tuples of ``kind``."""
    updates = []
    for _ in range(NUM_BATCHES):
        y_true, y_pred = _draw(kind, rng, rank1)
        args = (y_true,) if y_pred is None else (y_true, y_pred)
        if weighted:
            args += (rng.random(BATCH, dtype="float32"),)
        updates.append(args)
    return updates


def as_column(updates: list[tuple[np.ndarray, ...]]) -> list[tuple[np.ndarray, ...]]:
    """The same updates with (N,) labels reshaped to (N, 1)."""
    return [(u[0].reshape(-1, 1) if u[0].ndim == 1 else u[0],) + tuple(u[1:]) for u in updates]


def keras_result(case: Case, updates: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Keras' result for ``case`` after ``updates``, in the shapes Keras accepts."""
    return run(case.theirs(), updates if case.keras_takes_rank1 else as_column(updates))


def run(metric: Any, updates: list[tuple[Any, ...]]) -> np.ndarray:
    """Feed ``updates`` to ``metric`` (ours or Keras'); return ``result()`` as NumPy."""
    for args in updates:
        metric.update_state(*args)
    result = metric.result()
    return np.asarray(result.detach().cpu() if hasattr(result, "detach") else result)
