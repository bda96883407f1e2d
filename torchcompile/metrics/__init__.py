# SPDX-License-Identifier: Apache-2.0
"""``tc.metrics``: Keras 3's metrics as stateful accumulators on the model's device.

Owns: the table of string identifiers (Keras' spellings, exactly as
``keras.metrics.get`` accepts them, plus class names) and ``get()``. Not: resolving
``"accuracy"``/``"crossentropy"`` by the shapes of the data (the engine's compile_utils).
"""

from __future__ import annotations

import inspect
from typing import Any

from torch.nn.modules.loss import _Loss

from torchcompile.core.registry import Registry, to_snake_case
from torchcompile.losses import class_path
from torchcompile.losses.torch_loss import TorchLoss
from torchcompile.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from torchcompile.metrics.auc import AUC
from torchcompile.metrics.confusion import (
    FalseNegatives,
    FalsePositives,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from torchcompile.metrics.f_score import F1Score, FBetaScore
from torchcompile.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from torchcompile.metrics.metric import ForeignMetric, Mean, MeanMetricWrapper, Metric, Sum
from torchcompile.metrics.probabilistic import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    CategoricalHinge,
    Hinge,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from torchcompile.metrics.regression import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
    cosine_similarity,
)

__all__ = [
    "Metric",
    "Mean",
    "Sum",
    "MeanMetricWrapper",
    "ForeignMetric",
    "get",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "AUC",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "F1Score",
    "FBetaScore",
    "IoU",
    "MeanIoU",
    "BinaryIoU",
    "OneHotIoU",
    "OneHotMeanIoU",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "LogCoshError",
    "R2Score",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "cosine_similarity",
]

# Keras' ALL_OBJECTS_DICT: every class under its name and its snake_case name, plus
# Keras' short aliases. Ids are case-sensitive, as in Keras ("MSE" and "mse" both exist).
_CLASSES = [
    Mean,
    Sum,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    Precision,
    Recall,
    AUC,
    TruePositives,
    FalsePositives,
    TrueNegatives,
    FalseNegatives,
    F1Score,
    FBetaScore,
    IoU,
    MeanIoU,
    BinaryIoU,
    OneHotIoU,
    OneHotMeanIoU,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    R2Score,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    KLDivergence,
    Poisson,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
]
_ALIASES = {
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
}
METRICS = Registry(
    "metric",
    {**{cls.__name__: cls for cls in _CLASSES}, **{to_snake_case(cls.__name__): cls for cls in _CLASSES}, **_ALIASES},
    case_sensitive=True,
)


def _is_foreign(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("update", "compute", "reset"))


def _instantiate(cls: type, identifier: str) -> Metric:
    try:
        return cls()
    except TypeError as error:  # e.g. MeanIoU, which needs num_classes
        raise TypeError(
            f"The metric {identifier!r} has required arguments ({error}); build it as "
            f"tc.metrics.{cls.__name__}(...) and pass the object. Received: identifier={identifier!r}"
        ) from error


def _build_foreign(cls: type) -> Any:
    """A torchmetrics-style class given as the identifier: built with its defaults, as Keras builds classes."""
    try:
        return cls()
    except (TypeError, ValueError) as error:  # torchmetrics.Accuracy needs `task`
        name = class_path(cls)
        raise (TypeError if isinstance(error, TypeError) else ValueError)(
            f"The metric class {name} needs arguments to be built ({error}); pass an instance: "
            f"did you mean {name}(...)? Received: identifier={cls!r}"
        ) from error


def _class_hint(cls: type) -> str:
    name = class_path(cls)
    if issubclass(cls, _Loss):  # a torch loss takes (y_pred, y_true) and averages: not a metric as it is
        return (
            f"`metrics` got the torch loss class {name}, not a metric. A torch loss is called (y_pred, y_true) "
            f"and averages, so as a metric pass a function of (y_true, y_pred) returning per-sample "
            f'values, e.g. lambda y_true, y_pred: {name}(reduction="none")(y_pred, y_true), or a Keras id '
            f"such as 'sparse_categorical_crossentropy'. Received: identifier={cls!r}"
        )
    return f"`metrics` got the class {name}, not a metric object: did you mean {name}()? Received: identifier={cls!r}"


def get(identifier: Any) -> Metric | None:
    """Resolve ``identifier`` to a ``Metric``, as ``keras.metrics.get`` does.

    Args:
        identifier: ``None``; a ``Metric`` instance (returned as is) or subclass
            (instantiated); a string id or class name (``"mse"``, ``"BinaryAccuracy"``);
            a ``{"class_name": ..., "config": ...}`` dict; an object with torchmetrics'
            ``update``/``compute``/``reset`` (wrapped in ``ForeignMetric``); or a function
            ``fn(y_true, y_pred)`` (averaged over samples, named ``fn.__name__``).

    Returns:
        A ``Metric``, or ``None`` for ``None``.

    Example:
        >>> get("mse").name
        'mean_squared_error'
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return _instantiate(identifier, identifier.__name__)
    if isinstance(identifier, str):
        return _instantiate(METRICS.lookup(identifier), identifier)
    if isinstance(identifier, dict) and {"class_name", "config"} <= identifier.keys():
        return METRICS.lookup(identifier["class_name"]).from_config(dict(identifier["config"]))
    if inspect.isclass(identifier) and _is_foreign(identifier):
        return ForeignMetric(_build_foreign(identifier))
    if _is_foreign(identifier):
        return ForeignMetric(identifier)
    if isinstance(identifier, _Loss):  # called (input, target) as torch does; averaged over samples
        return MeanMetricWrapper(TorchLoss(identifier).call, name=to_snake_case(type(identifier).__name__))
    if callable(identifier) and not inspect.isclass(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", None))
    if inspect.isclass(identifier):
        raise TypeError(_class_hint(identifier))
    raise TypeError(
        "A metric must be a string id, a tc.metrics.Metric, a {'class_name', 'config'} "
        "dict, an object with torchmetrics' update/compute/reset, or a function "
        f"fn(y_true, y_pred); got a {type(identifier).__name__}. "
        f"Received: identifier={identifier!r}"
    )
