# SPDX-License-Identifier: Apache-2.0
"""Losses with Keras 3's names and numbers, in torch. Owns: the id table and ``get()``.

``get`` accepts what Keras' does (ids, classes, instances, configs, functions) plus torch's
``nn`` loss modules. Ids match Keras' spelling exactly. ``"crossentropy"``/``"ce"`` depend on
shapes and are resolved by the engine (``engine/compile_utils.py``), not here.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch.nn.modules.loss import _Loss

from torchcompile.core.registry import Registry
from torchcompile.losses import checks
from torchcompile.losses.classes import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalHinge,
    CosineSimilarity,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SparseCategoricalCrossentropy,
    SquaredHinge,
)
from torchcompile.losses.functions import (
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_hinge,
    cosine_similarity,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    squared_hinge,
)
from torchcompile.losses.loss import Loss, LossFunctionWrapper
from torchcompile.losses.torch_loss import TorchLoss

_CLASSES = [
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    Huber,
    LogCosh,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
]
_FUNCTIONS = [
    mean_squared_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
    cosine_similarity,
    huber,
    log_cosh,
    hinge,
    squared_hinge,
    categorical_hinge,
    kl_divergence,
    poisson,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    sparse_categorical_crossentropy,
]

__all__ = [
    "Loss",
    "LossFunctionWrapper",
    "TorchLoss",
    "get",
    "checks",
    *(c.__name__ for c in _CLASSES),
    *(f.__name__ for f in _FUNCTIONS),
]

# Keras' ALL_OBJECTS_DICT: class names, function names, Keras' short aliases, and the
# Keras 2 spellings api.md keeps.
LOSSES = Registry(
    "loss",
    {
        **{cls.__name__: cls for cls in _CLASSES},
        **{fn.__name__: fn for fn in _FUNCTIONS},
        "bce": binary_crossentropy,
        "BCE": binary_crossentropy,
        "mse": mean_squared_error,
        "MSE": mean_squared_error,
        "mae": mean_absolute_error,
        "MAE": mean_absolute_error,
        "mape": mean_absolute_percentage_error,
        "MAPE": mean_absolute_percentage_error,
        "msle": mean_squared_logarithmic_error,
        "MSLE": mean_squared_logarithmic_error,
        "kld": kl_divergence,
        "KLD": kl_divergence,
        "kullback_leibler_divergence": kl_divergence,
        "logcosh": log_cosh,
    },
    case_sensitive=True,
)


def get(identifier: Any) -> Loss | None:
    """Resolve a loss identifier to a ``Loss``, as ``keras.losses.get`` does, plus torch modules.

    Args:
        identifier: None; a ``Loss`` instance or subclass; a Keras id or class name
            (``"mse"``, ``"MeanSquaredError"``); a ``{"class_name", "config"}`` dict; a
            ``torch.nn`` loss module (called ``module(y_pred, y_true)``); or a function
            ``fn(y_true, y_pred)`` returning per-sample losses.

    Returns:
        A ``Loss``, or None for None.

    Raises:
        ValueError: an unknown id, with close matches.
        TypeError: an identifier of another type.

    Example:
        >>> get("mse").name
        'mean_squared_error'
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Loss):
        return _instantiate(identifier)
    if isinstance(identifier, str):
        if identifier.lower() in ("crossentropy", "ce"):
            raise ValueError(
                f"The loss {identifier!r} depends on the shapes of y_true and y_pred, so only "
                f"Model.compile resolves it. Name the loss here: 'binary_crossentropy', "
                f"'categorical_crossentropy' or 'sparse_categorical_crossentropy'. "
                f"Received: loss={identifier!r}"
            )
        return _from_entry(LOSSES.lookup(identifier))
    if isinstance(identifier, dict):
        return _from_config(identifier)
    if isinstance(identifier, _Loss):
        return TorchLoss(identifier)
    if callable(identifier) and not inspect.isclass(identifier):
        return LossFunctionWrapper(identifier)
    if inspect.isclass(identifier):  # `loss=nn.CrossEntropyLoss`: Keras would build it; torch code never means that
        name = class_path(identifier)
        raise TypeError(
            f"`loss` is the class {name}, not a loss object: did you mean {name}()? Pass an instance; a "
            f"torch.nn loss module is called module(y_pred, y_true) as in torch. Received: loss={identifier!r}"
        )
    raise TypeError(
        f"Could not interpret loss identifier of type {type(identifier).__name__}. Pass a Keras "
        f"id such as 'mse', a tc.losses.Loss, a torch.nn loss module, or a function "
        f"fn(y_true, y_pred). Received: loss={identifier!r}"
    )


def class_path(cls: type) -> str:
    """How a user writes ``cls``: ``nn.CrossEntropyLoss``, ``torchmetrics.Accuracy``, else its name."""
    module = cls.__module__ or ""
    if module.startswith("torch.nn"):
        return f"nn.{cls.__name__}"
    if module.startswith("torchmetrics"):
        return f"torchmetrics.{cls.__name__}"
    return cls.__name__


def _instantiate(cls: type) -> Loss:
    """A Loss class given as the identifier, built with its defaults (Keras)."""
    try:
        return cls()
    except TypeError as error:  # a subclass whose constructor needs arguments
        raise TypeError(
            f"The loss class {cls.__name__} needs arguments to be built ({error}); build it yourself, "
            f"{cls.__name__}(...), and pass the object. Received: loss={cls!r}"
        ) from error


def _from_entry(entry: Any) -> Loss:
    """A table entry (a class or a per-sample function) as a Loss."""
    return entry() if inspect.isclass(entry) else LossFunctionWrapper(entry)


def _from_config(config: dict[str, Any]) -> Loss:
    """``{"class_name": ..., "config": {...}}`` (the form ``Loss.get_config`` and saving use)."""
    if "class_name" not in config:
        raise ValueError(f"A loss config needs a 'class_name' key and a 'config' key. Received: loss={config!r}")
    class_name, inner = config["class_name"], config.get("config") or {}
    if class_name == "function":  # Keras' form for a plain function
        return _from_entry(LOSSES.lookup(inner))
    if class_name in ("LossFunctionWrapper", "TorchLoss"):
        return {"LossFunctionWrapper": LossFunctionWrapper, "TorchLoss": TorchLoss}[class_name].from_config(inner)
    entry = LOSSES.lookup(class_name)
    if not inspect.isclass(entry):
        return LossFunctionWrapper(entry, **inner)
    return entry.from_config(inner)
