# SPDX-License-Identifier: Apache-2.0
"""The Loss base class. Owns: input conversion, Keras 3's reductions, sample weights and the
``ignore_class`` mask, and ``LossFunctionWrapper`` (a per-sample function as a Loss).

Not: the arithmetic (``functions.py``), the torch ``nn`` adapter (``torch_loss.py``), or the
classes with Keras' defaults (``classes.py``).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from torchcompile.core.registry import to_snake_case
from torchcompile.losses import functions, probabilistic
from torchcompile.losses.checks import keras_squeeze_or_expand

__all__ = ["Loss", "LossFunctionWrapper", "reduce_weighted_values", "standardize_reduction"]

REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight")
_MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")
_SPARSE_OPTIONS = {"from_logits", "axis", "ignore_class"}
_CATEGORICAL_OPTIONS = {"from_logits", "axis", "label_smoothing"}

# Functions that take probabilities unless from_logits=True: the class to suggest and the layer
# that turns logits into probabilities.
_PROBABILITY_FUNCTIONS = {
    probabilistic.binary_crossentropy: ("BinaryCrossentropy", "nn.Sigmoid()"),
    probabilistic.binary_focal_crossentropy: ("BinaryFocalCrossentropy", "nn.Sigmoid()"),
    probabilistic.categorical_crossentropy: ("CategoricalCrossentropy", "nn.Softmax(dim=-1)"),
    probabilistic.categorical_focal_crossentropy: ("CategoricalFocalCrossentropy", "nn.Softmax(dim=-1)"),
    probabilistic.sparse_categorical_crossentropy: ("SparseCategoricalCrossentropy", "nn.Softmax(dim=-1)"),
}


def standardize_reduction(reduction: str | None) -> str | None:
    """Return ``reduction`` if Keras 3 knows it, else raise a ValueError listing the choices."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Unknown loss reduction {reduction!r}. Use one of {REDUCTIONS}. Received: reduction={reduction!r}"
        )
    return reduction


def _standardize_dtype(dtype: Any) -> torch.dtype:
    if dtype is None:
        return torch.float32  # keras.backend.floatx()
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(
            f"A loss computes in a floating dtype such as torch.float32 or 'float64'. Received: dtype={dtype!r}"
        )
    return resolved


def _to_tensor(
    x: Any, dtype: torch.dtype, device: torch.device | None = None, keep_integers: bool = False
) -> torch.Tensor:
    """A tensor on ``device``; floats (and, unless ``keep_integers``, everything) in ``dtype``."""
    if not isinstance(x, torch.Tensor) or (device is not None and x.device != device):
        x = torch.as_tensor(x, device=device)
    if x.dtype != dtype and (x.is_floating_point() or not keep_integers or x.dtype == torch.bool):
        x = x.to(dtype)  # skipped on the hot path, where y_pred is already float32 (a no-op call costs µs)
    return x


class Loss(nn.Module):
    """Base class of losses: ``loss(y_true, y_pred, sample_weight=None)`` → a reduced tensor.

    Subclasses implement ``call(y_true, y_pred)``, returning per-sample values; ``__call__``
    converts the inputs (floats to ``dtype``, on y_pred's device), applies ``sample_weight``
    and reduces, as Keras 3 does. A ``torch.nn.Module`` (``forward`` is the same call), with
    Keras' argument order ``(y_true, y_pred)``; torch's own loss modules keep ``(input, target)``.

    Args:
        reduction: ``"sum_over_batch_size"`` (the mean over every value), ``"sum"``,
            ``"mean_with_sample_weight"`` (the sum divided by the sum of the sample weights),
            ``"mean"`` (as ``"sum_over_batch_size"``), or ``"none"``/``None`` (no reduction).
        name: the name shown in logs; defaults to the snake_case class name.
        dtype: the dtype the loss computes in; defaults to float32, as Keras' floatx.

    Example:
        >>> from torchcompile.losses import MeanSquaredError
        >>> MeanSquaredError()([0.0, 1.0], [1.0, 1.0])
        tensor(0.5000)
    """

    expects_probabilities: bool = False  # a logits check applies (checks.check_probabilities)
    sparse_labels: bool = False  # y_true holds class indices (checks.check_sparse_labels)
    ignore_class: int | None = None  # a label excluded from the loss, for sparse losses
    class_axis: int = -1  # the axis of y_pred that holds the classes

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str | None = None, dtype: Any = None):
        super().__init__()
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self.dtype = _standardize_dtype(dtype)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        y_pred = _to_tensor(y_pred, self.dtype)
        y_true = _to_tensor(y_true, self.dtype, y_pred.device, keep_integers=self.sparse_labels)
        values = self.call(y_true, y_pred)
        mask = self.compute_mask(y_true, y_pred)
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def forward(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """``loss(y_true, y_pred, sample_weight)``; ``__call__`` runs it without nn.Module's hook machinery."""
        return self(y_true, y_pred, sample_weight)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Per-sample loss values. Subclasses implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def compute_mask(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor | None:
        """Which per-sample values count (Keras' mask), or None for all of them."""
        return None

    @property
    def display_name(self) -> str:
        """How error messages name this loss."""
        return type(self).__name__

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if not callable(v))
        return f"{type(self).__name__}({args})"


class LossFunctionWrapper(Loss):
    """A per-sample function ``fn(y_true, y_pred, **kwargs)`` as a ``Loss``.

    Args:
        fn: the function, in Keras' argument order.
        **kwargs: passed to ``fn`` on every call (``from_logits``, ``delta``, ...).

    Also takes the arguments of ``Loss``; ``name`` defaults to the function's name.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ):
        super().__init__(reduction=reduction, name=name or _function_name(fn), dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs
        self.sparse_labels = fn is probabilistic.sparse_categorical_crossentropy
        self.ignore_class = kwargs.get("ignore_class") if self.sparse_labels else None
        self.class_axis = kwargs.get("axis", -1)
        self.expects_probabilities = fn in _PROBABILITY_FUNCTIONS and not kwargs.get("from_logits", False)
        self._fused = self._fused_crossentropy()

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        if (
            self._fused is not None
            and sample_weight is None
            and isinstance(y_pred, torch.Tensor)
            and isinstance(y_true, torch.Tensor)
            and y_pred.dtype == self.dtype
            and y_pred.dim() == 2
            and self.reduction in _MEAN_REDUCTIONS
        ):
            value = self._fused(y_true, y_pred)
            if value is not None:
                return value
        return super().__call__(y_true, y_pred, sample_weight)

    def _fused_crossentropy(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor | None] | None:
        """The one-call path of the common training loss, or None: crossentropy from logits with
        no ignored class, computed by ``F.cross_entropy`` with its mean (one kernel and one backward
        node fewer than per-sample values and a separate mean; equal within float32 rounding). Not
        for a subclass that changes what the loss computes or masks."""
        cls = type(self)
        if cls.call is not LossFunctionWrapper.call or cls.compute_mask is not LossFunctionWrapper.compute_mask:
            return None
        kwargs = self._fn_kwargs
        if not kwargs.get("from_logits", False) or kwargs.get("axis", -1) not in (-1, 1):
            return None
        if self.fn is probabilistic.sparse_categorical_crossentropy and set(kwargs) <= _SPARSE_OPTIONS:
            return _fused_sparse if kwargs.get("ignore_class") is None else None
        if self.fn is probabilistic.categorical_crossentropy and set(kwargs) <= _CATEGORICAL_OPTIONS:
            smoothing = float(kwargs.get("label_smoothing", 0.0))
            return functools.partial(_fused_categorical, label_smoothing=smoothing) if smoothing else _fused_categorical
        return None

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        if not _is_builtin(self.fn):
            # A user's function gets Keras' lenient rule; ours apply the strict one themselves.
            y_true, y_pred = keras_squeeze_or_expand(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def compute_mask(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor | None:
        if self.ignore_class is None:
            return None
        return probabilistic.sparse_valid_mask(y_true, y_pred, self.ignore_class, self.class_axis)

    @property
    def display_name(self) -> str:
        return self.name if type(self) is LossFunctionWrapper else type(self).__name__

    @property
    def logits_fix(self) -> str:
        """The change that makes this loss accept logits, for the logits check's message."""
        cls_name = _PROBABILITY_FUNCTIONS.get(self.fn, (type(self).__name__,))[0]
        return f"tc.losses.{cls_name}(from_logits=True)"

    @property
    def probability_layer(self) -> str:
        return _PROBABILITY_FUNCTIONS.get(self.fn, ("", "nn.Sigmoid()"))[1]

    def get_config(self) -> dict[str, Any]:
        fn = self.fn.__name__ if _is_builtin(self.fn) else self.fn
        return {**super().get_config(), "fn": fn, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossFunctionWrapper:
        config = dict(config)
        if isinstance(config.get("fn"), str):
            config["fn"] = getattr(functions, config["fn"])
        return cls(**config)


def _fused_sparse(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor | None:
    """The mean sparse crossentropy of ``(N, C)`` logits against int64 labels ``(N,)`` or ``(N, 1)``
    in one ``F.cross_entropy`` call; None for any other input (the general path takes it)."""
    n = y_pred.shape[0]
    if y_true.dtype != torch.int64 or not n or y_true.device != y_pred.device:
        return None
    if y_true.dim() == 2 and y_true.shape[1] == 1:
        y_true = y_true.reshape(n)  # a view
    elif y_true.dim() != 1:
        return None
    if y_true.shape[0] != n:
        return None
    return F.cross_entropy(y_pred, y_true)


def _fused_categorical(y_true: torch.Tensor, y_pred: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor | None:
    """The mean categorical crossentropy of ``(N, C)`` logits against one-hot or soft labels of the
    same shape and dtype in one ``F.cross_entropy`` call (torch smooths labels as Keras does:
    ``y * (1 - s) + s / C``); None for any other input."""
    if (
        y_true.shape != y_pred.shape
        or y_true.dtype != y_pred.dtype
        or not y_pred.shape[0]
        or y_pred.shape[1] == 1  # the general path warns about one class
        or y_true.device != y_pred.device
    ):
        return None
    return F.cross_entropy(y_pred, y_true, label_smoothing=label_smoothing)


def _is_builtin(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is one of this package's per-sample functions."""
    return getattr(functions, getattr(fn, "__name__", ""), None) is fn


def _function_name(fn: Callable[..., Any]) -> str:
    """The function's name; ``"lambda"`` for a lambda; the snake_case class name for objects."""
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", None)
    if name is None:
        return to_snake_case(type(fn).__name__)
    return name if name.isidentifier() else "lambda"


def _match_weights(values: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keras' squeeze-or-expand; then per-sample weights of shape (N,) spread over (N, T, ...)."""
    values, weights = keras_squeeze_or_expand(values, weights)
    if 0 < weights.dim() < values.dim() and weights.shape == values.shape[: weights.dim()]:
        weights = weights.reshape(weights.shape + (1,) * (values.dim() - weights.dim()))
    try:
        fits = values.dim() == 0 or torch.broadcast_shapes(values.shape, weights.shape) == values.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"sample_weight of shape {tuple(weights.shape)} does not fit the per-sample losses of "
            f"shape {tuple(values.shape)}: give one weight per sample. "
            f"Received: sample_weight.shape={tuple(weights.shape)}"
        )
    return values, weights


def _apply_mask(
    weights: torch.Tensor | None, mask: torch.Tensor | None, dtype: torch.dtype, reduction: str | None
) -> torch.Tensor | None:
    """Merge Keras' mask into the sample weights; a mean then counts only the valid entries."""
    if mask is None:
        return weights
    if reduction in ("mean", "sum_over_batch_size"):
        valid = torch.sum(mask.to(dtype))
        scale = torch.where(valid == 0, 0.0, mask.numel() / valid)  # divide_no_nan
        float_mask = torch.where(mask, scale, 0.0).to(dtype)
    else:
        float_mask = mask.to(dtype)
    if weights is None:
        return float_mask
    float_mask, weights = keras_squeeze_or_expand(float_mask, weights)
    return weights * float_mask


def reduce_weighted_values(
    values: torch.Tensor, sample_weight: Any = None, mask: Any = None, reduction: str | None = "sum_over_batch_size"
) -> torch.Tensor:
    """Weight, mask and reduce per-sample loss values, as Keras 3's ``reduce_weighted_values``.

    Args:
        values: per-sample losses.
        sample_weight: weights broadcastable to ``values`` after Keras' squeeze-or-expand rule.
        mask: booleans, True where a value counts (from ``ignore_class``).
        reduction: one of ``REDUCTIONS``.
    """
    reduction = standardize_reduction(reduction)
    weights = None
    if sample_weight is not None:
        weights = torch.as_tensor(sample_weight, device=values.device).to(values.dtype)
    weights = _apply_mask(weights, mask, values.dtype, reduction)
    if weights is not None:
        values, weights = _match_weights(values, weights)
        values = values * weights
    if reduction is None or reduction == "none" or values.dim() == 0:
        return values
    if reduction in ("sum_over_batch_size", "mean") and weights is None and values.numel():
        return torch.mean(values)  # sum / size in one kernel (and one backward node), the hot path
    loss = torch.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and weights is not None:
        divisor = torch.sum(weights)
        safe = torch.where(divisor == 0, torch.ones_like(divisor), divisor)  # no NaN gradient
        return torch.where(divisor == 0, torch.zeros_like(loss), loss / safe)  # divide_no_nan
    return loss / values.numel() if values.numel() else torch.zeros_like(loss)
