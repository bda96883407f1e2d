# SPDX-License-Identifier: Apache-2.0
"""``TorchLoss``: a ``torch.nn`` loss module (``nn.MSELoss()``, ``nn.CrossEntropyLoss()`` ...) as a Loss.

Owns: PyTorch's argument order ``module(y_pred, y_true)``, matching target shapes so nothing
broadcasts silently, and sample weights for modules. Not: the Keras losses (``classes.py``).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from torchcompile.core.registry import to_snake_case
from torchcompile.losses.checks import squeeze_or_expand, squeeze_or_expand_sparse
from torchcompile.losses.loss import Loss, reduce_weighted_values

__all__ = ["TorchLoss"]

# Modules whose target may hold class indices, with the classes on dim 1 (torch's convention).
_CLASS_INDEX_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss, nn.MultiMarginLoss)
# Modules whose target must stay an integer tensor of y_pred's shape.
_INTEGER_TARGET_LOSSES = (nn.MultiLabelMarginLoss,)


class TorchLoss(Loss):
    """Adapts a ``torch.nn.modules.loss._Loss`` instance; called ``(y_true, y_pred)`` like any Loss.

    Without ``sample_weight`` the module computes and reduces the loss itself, so its own options
    (``ignore_index``, class ``weight``, its ``reduction``) hold exactly. With ``sample_weight`` the
    module runs with ``reduction="none"``, each sample's values are averaged, and Keras'
    ``reduction`` applies. Targets are matched to ``y_pred`` first: ``(N,)`` against ``(N, 1)``
    is reshaped, never broadcast to N×N; an irreconcilable pair raises.

    Args:
        module: the torch loss module, called as ``module(y_pred, y_true)``.
        reduction: Keras' reduction, used only with ``sample_weight`` or a module reducing "none".
        name: defaults to the snake_case name of the module's class (``"mse_loss"``).

    Example:
        >>> TorchLoss(nn.MSELoss())([0.0, 1.0], [[1.0], [1.0]])
        tensor(0.5000)
    """

    class_axis = 1

    def __init__(
        self,
        module: nn.Module,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(reduction=reduction, name=name or to_snake_case(type(module).__name__), dtype=dtype)
        self.module = module
        # For sample weights: a shallow copy reducing "none"; it shares the module's parameters and
        # buffers, and is made here, not per call, so torch.compile traces the call without a break.
        self._per_element = copy.copy(module)
        self._per_element.reduction = "none"
        self.sparse_labels = isinstance(module, _CLASS_INDEX_LOSSES)
        self.expects_probabilities = isinstance(module, nn.BCELoss)
        ignore = getattr(module, "ignore_index", None)
        self.ignore_class = ignore if self.sparse_labels else None

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        y_pred = torch.as_tensor(y_pred)
        y_pred = y_pred if y_pred.is_floating_point() else y_pred.to(self.dtype)
        y_true = torch.as_tensor(y_true, device=y_pred.device)
        if sample_weight is None and getattr(self.module, "reduction", "mean") != "none":
            return self.module(y_pred, self._match_target(y_true, y_pred))
        values = self.call(y_true, y_pred)
        return reduce_weighted_values(values, sample_weight, None, self.reduction)

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Per-sample values: the module's unreduced output averaged over all but the first dim."""
        values = self._per_element(y_pred, self._match_target(y_true, y_pred))
        return values.reshape(values.shape[0], -1).mean(dim=1) if values.dim() > 1 else values

    def _match_target(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """y_true shaped and typed as the module wants it, or a ValueError naming both shapes."""
        if self.sparse_labels and _holds_class_indices(y_true, y_pred):
            axis = 1 if y_pred.dim() > 1 else 0
            return squeeze_or_expand_sparse(y_true, y_pred, axis).long()
        if not isinstance(self.module, _INTEGER_TARGET_LOSSES):
            y_true = y_true.to(y_pred.dtype)
        y_true, matched_pred = squeeze_or_expand(y_true, y_pred)
        if matched_pred.shape != y_pred.shape:  # the rule reshaped y_pred: reshape y_true instead
            y_true = y_true.reshape(y_pred.shape)
        return y_true

    @property
    def display_name(self) -> str:
        return f"nn.{type(self.module).__name__}"

    @property
    def logits_fix(self) -> str:
        return "nn.BCEWithLogitsLoss()"

    @property
    def probability_layer(self) -> str:
        return "nn.Sigmoid()"

    def get_config(self) -> dict[str, Any]:
        """Name, reduction and the module's class; the module's own arguments are not kept."""
        return {**super().get_config(), "module": f"torch.nn.{type(self.module).__name__}"}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TorchLoss:
        """Rebuild with a default-constructed module of the recorded class."""
        config = dict(config)
        module = getattr(nn, config.pop("module").rsplit(".", 1)[-1])()
        return cls(module, **config)


def _holds_class_indices(y_true: torch.Tensor, y_pred: torch.Tensor) -> bool:
    """True unless y_true is a float tensor of y_pred's shape (class probabilities)."""
    if not y_true.is_floating_point():
        return True
    return y_true.shape != y_pred.shape or y_pred.dim() == 0 or y_pred.shape[-1] == 1
