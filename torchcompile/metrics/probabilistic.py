# SPDX-License-Identifier: Apache-2.0
"""Probabilistic and hinge metrics: Keras' loss functions averaged over samples.

Owns: BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge (the metric classes, with
Keras' names and options). Not: the per-sample numerics (``torchcompile/losses``).
"""

from __future__ import annotations

from typing import Any

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank
from torchcompile.losses import functions as loss_fns
from torchcompile.losses.probabilistic import sparse_valid_mask
from torchcompile.metrics.metric import MeanMetricWrapper

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
]


class _LossMetric(MeanMetricWrapper):
    """The mean of a Keras loss function over samples; lower is better."""

    higher_is_better = False


class BinaryCrossentropy(_LossMetric):
    """Mean binary crossentropy between labels and predictions.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: moves labels towards 0.5 by this fraction.

    Also takes the arguments of ``Metric``.
    """

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
    ):
        super().__init__(
            loss_fns.binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )


class CategoricalCrossentropy(_LossMetric):
    """Mean crossentropy between one-hot labels and predictions.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        label_smoothing: mixes this fraction of a uniform distribution into the labels.
        axis: the class axis (default -1).

    Also takes the arguments of ``Metric``.
    """

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
        axis: int = -1,
    ):
        super().__init__(
            loss_fns.categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_LossMetric):
    """Mean crossentropy between integer labels and predictions.

    Entries labelled ``ignore_class`` add 0 to the total; with a ``sample_weight`` they
    also leave the count, as Keras' mask does.

    Args:
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
        ignore_class: a label whose entries do not count (default None).
        axis: the class axis (default -1).

    Also takes the arguments of ``Metric``.
    """

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ):
        super().__init__(
            loss_fns.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.ignore_class, self.axis = ignore_class, axis

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if self.ignore_class is not None and sample_weight is not None:
            # Keras masks the weights (not the count of an unweighted update) with the loss' mask.
            y_pred = self._tensor(y_pred)
            mask = sparse_valid_mask(self._tensor(y_true), y_pred, self.ignore_class, self.axis)
            mask, sample_weight = squeeze_or_expand_to_same_rank(
                mask.to(self.dtype), self._tensor(sample_weight, self.dtype)
            )
            sample_weight = sample_weight * mask
        super().update_state(y_true, y_pred, sample_weight=sample_weight)


class KLDivergence(_LossMetric):
    """Mean Kullback-Leibler divergence. Also takes the arguments of ``Metric``."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None):
        super().__init__(loss_fns.kl_divergence, name=name, dtype=dtype)


class Poisson(_LossMetric):
    """Mean Poisson loss ``y_pred - y_true * log(y_pred)``. Also takes the arguments of ``Metric``."""

    def __init__(self, name: str = "poisson", dtype: Any = None):
        super().__init__(loss_fns.poisson, name=name, dtype=dtype)


class Hinge(_LossMetric):
    """Mean hinge loss; {0, 1} labels are read as {-1, 1}. Also takes the arguments of ``Metric``."""

    def __init__(self, name: str = "hinge", dtype: Any = None):
        super().__init__(loss_fns.hinge, name=name, dtype=dtype)


class SquaredHinge(_LossMetric):
    """Mean squared hinge loss. Also takes the arguments of ``Metric``."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(loss_fns.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(_LossMetric):
    """Mean categorical hinge loss. Also takes the arguments of ``Metric``."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(loss_fns.categorical_hinge, name=name, dtype=dtype)
