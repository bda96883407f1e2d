# SPDX-License-Identifier: Apache-2.0
"""Keras 3's loss classes: thin ``LossFunctionWrapper`` subclasses that add Keras' defaults and names.

Owns: class names, default ``name``s and option defaults, and ``get_config``. Not: the arithmetic
(``functions.py``, ``probabilistic.py``) nor reductions (``loss.py``). Every class also takes the
arguments of ``Loss`` (``reduction``, ``name``, ``dtype``).
"""

from __future__ import annotations

from typing import Any

from torchcompile.losses import functions as fn
from torchcompile.losses.loss import Loss, LossFunctionWrapper

__all__ = [
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "Huber",
    "LogCosh",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "KLDivergence",
    "Poisson",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "SparseCategoricalCrossentropy",
]

_SUM = "sum_over_batch_size"


class _KerasLoss(LossFunctionWrapper):
    """A Keras loss class: its options are its function's keyword arguments and its attributes."""

    def __init__(self, function: Any, reduction: str | None, name: str, dtype: Any, **options: Any):
        super().__init__(function, reduction=reduction, name=name, dtype=dtype, **options)
        for key, value in options.items():
            setattr(self, key, value)

    def get_config(self) -> dict[str, Any]:
        return {**Loss.get_config(self), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)


class MeanSquaredError(_KerasLoss):
    """Mean of the squared errors. Example: ``MeanSquaredError()(y_true, y_pred)``."""

    def __init__(self, reduction: str | None = _SUM, name: str = "mean_squared_error", dtype: Any = None):
        super().__init__(fn.mean_squared_error, reduction, name, dtype)


class MeanAbsoluteError(_KerasLoss):
    """Mean of the absolute errors."""

    def __init__(self, reduction: str | None = _SUM, name: str = "mean_absolute_error", dtype: Any = None):
        super().__init__(fn.mean_absolute_error, reduction, name, dtype)


class MeanAbsolutePercentageError(_KerasLoss):
    """``100 * mean(abs((y_true - y_pred) / y_true))``, with ``abs(y_true)`` floored at 1e-7."""

    def __init__(self, reduction: str | None = _SUM, name: str = "mean_absolute_percentage_error", dtype: Any = None):
        super().__init__(fn.mean_absolute_percentage_error, reduction, name, dtype)


class MeanSquaredLogarithmicError(_KerasLoss):
    """Mean of the squared differences of ``log(1 + y)``."""

    def __init__(self, reduction: str | None = _SUM, name: str = "mean_squared_logarithmic_error", dtype: Any = None):
        super().__init__(fn.mean_squared_logarithmic_error, reduction, name, dtype)


class CosineSimilarity(_KerasLoss):
    """Negative cosine similarity along ``axis`` (-1 is best).

    Args:
        axis: the axis holding the vectors.
    """

    def __init__(
        self, axis: int = -1, reduction: str | None = _SUM, name: str = "cosine_similarity", dtype: Any = None
    ):
        super().__init__(fn.cosine_similarity, reduction, name, dtype, axis=axis)


class Huber(_KerasLoss):
    """Huber loss.

    Args:
        delta: where the loss turns from quadratic to linear.
    """

    def __init__(self, delta: float = 1.0, reduction: str | None = _SUM, name: str = "huber_loss", dtype: Any = None):
        super().__init__(fn.huber, reduction, name, dtype, delta=delta)


class LogCosh(_KerasLoss):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    def __init__(self, reduction: str | None = _SUM, name: str = "log_cosh", dtype: Any = None):
        super().__init__(fn.log_cosh, reduction, name, dtype)


class Hinge(_KerasLoss):
    """Hinge loss; labels in {0, 1} are read as {-1, 1}."""

    def __init__(self, reduction: str | None = _SUM, name: str = "hinge", dtype: Any = None):
        super().__init__(fn.hinge, reduction, name, dtype)


class SquaredHinge(_KerasLoss):
    """Squared hinge loss; labels in {0, 1} are read as {-1, 1}."""

    def __init__(self, reduction: str | None = _SUM, name: str = "squared_hinge", dtype: Any = None):
        super().__init__(fn.squared_hinge, reduction, name, dtype)


class CategoricalHinge(_KerasLoss):
    """Categorical hinge loss on one-hot labels."""

    def __init__(self, reduction: str | None = _SUM, name: str = "categorical_hinge", dtype: Any = None):
        super().__init__(fn.categorical_hinge, reduction, name, dtype)


class KLDivergence(_KerasLoss):
    """Kullback-Leibler divergence between label and prediction distributions."""

    def __init__(self, reduction: str | None = _SUM, name: str = "kl_divergence", dtype: Any = None):
        super().__init__(fn.kl_divergence, reduction, name, dtype)


class Poisson(_KerasLoss):
    """Poisson loss ``mean(y_pred - y_true * log(y_pred))``."""

    def __init__(self, reduction: str | None = _SUM, name: str = "poisson", dtype: Any = None):
        super().__init__(fn.poisson, reduction, name, dtype)


class BinaryCrossentropy(_KerasLoss):
    """Binary crossentropy between labels in [0, 1] and probabilities (or logits).

    Args:
        from_logits: whether predictions are logits; else they must be probabilities.
        label_smoothing: moves labels towards 0.5 by this fraction.
        axis: the axis to average over.

    Example:
        >>> BinaryCrossentropy(from_logits=True)([[0.0], [1.0]], [[-2.0], [3.0]])
        tensor(0.0878)
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = _SUM,
        name: str = "binary_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(
            fn.binary_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class BinaryFocalCrossentropy(_KerasLoss):
    """Binary focal crossentropy, which down-weights easy examples.

    Args:
        apply_class_balancing: weight positives by ``alpha``, negatives by ``1 - alpha``.
        alpha: the class-balancing weight.
        gamma: the focusing exponent.
        from_logits, label_smoothing, axis: as in ``BinaryCrossentropy``.
    """

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = _SUM,
        name: str = "binary_focal_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(
            fn.binary_focal_crossentropy,
            reduction,
            name,
            dtype,
            apply_class_balancing=apply_class_balancing,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalCrossentropy(_KerasLoss):
    """Crossentropy between one-hot labels and class probabilities (or logits).

    Args:
        from_logits: whether predictions are logits; else probabilities along ``axis``.
        label_smoothing: mixes this fraction of a uniform distribution into the labels.
        axis: the class axis.
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = _SUM,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(
            fn.categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalFocalCrossentropy(_KerasLoss):
    """Categorical focal crossentropy, which down-weights easy examples.

    Args:
        alpha: the weighting factor.
        gamma: the focusing exponent.
        from_logits, label_smoothing, axis: as in ``CategoricalCrossentropy``.
    """

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = _SUM,
        name: str = "categorical_focal_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(
            fn.categorical_focal_crossentropy,
            reduction,
            name,
            dtype,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_KerasLoss):
    """Crossentropy between integer class labels and class probabilities (or logits).

    Args:
        from_logits: whether predictions are logits; else probabilities along ``axis``.
        ignore_class: a label whose entries do not count (e.g. padding); the mean skips them.
        axis: the class axis.
    """

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str | None = _SUM,
        axis: int = -1,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ):
        super().__init__(
            fn.sparse_categorical_crossentropy,
            reduction,
            name,
            dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
