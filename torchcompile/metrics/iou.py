# SPDX-License-Identifier: Apache-2.0
"""Intersection-over-union metrics (IoU, MeanIoU, BinaryIoU, OneHot*) as Keras 3 computes them.

Owns: the running ``num_classes x num_classes`` confusion matrix (rows true, columns predicted)
and ``ignore_class``. As in Keras the matrix is integer by default (labels and weights are
truncated unless ``dtype`` is a float); int64 rather than Keras' int32, so it cannot overflow.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch

from torchcompile.metrics.metric import Metric, resolve_dtype

__all__ = ["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"]

EPSILON = 1e-7  # keras.backend.epsilon()


class IoU(Metric):
    """IoU ``tp / (tp + fp + fn)`` averaged over ``target_class_ids`` (``keras.metrics.IoU``).

    Args:
        num_classes: the number of classes.
        target_class_ids: the classes whose IoU is averaged.
        ignore_class: a label whose pixels do not count (default None).
        sparse_y_true, sparse_y_pred: labels / predictions are class ids (True, default), or
            one-hot labels / scores along ``axis`` (default -1) to take the arg-max of.
        name, dtype: as ``Metric``'s; ``dtype`` defaults to int64 (Keras: "int").
    """

    higher_is_better = True
    _config_keys = ("num_classes", "target_class_ids", "ignore_class", "sparse_y_true", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        super().__init__(name=name)
        self.dtype = torch.int64 if dtype is None else resolve_dtype(dtype, allow_int=True)
        if max(target_class_ids) >= num_classes:
            raise ValueError(
                f"Target class id {max(target_class_ids)} is out of range [0, {num_classes}). "
                f"Received: target_class_ids={list(target_class_ids)!r}"
            )
        self.num_classes, self.target_class_ids = num_classes, list(target_class_ids)
        self.ignore_class = ignore_class
        self.sparse_y_true, self.sparse_y_pred, self.axis = sparse_y_true, sparse_y_pred, axis
        self.add_state("total_cm", torch.zeros(num_classes, num_classes))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_true, y_pred = self._tensor(y_true), self._tensor(y_pred)
        if not self.sparse_y_true:
            y_true = y_true.argmax(dim=self.axis)
        if not self.sparse_y_pred:
            y_pred = y_pred.argmax(dim=self.axis)
        y_true, y_pred = y_true.to(self.dtype).reshape(-1), y_pred.to(self.dtype).reshape(-1)
        if "float" in str(getattr(sample_weight, "dtype", "")) and not self.dtype.is_floating_point:
            warnings.warn(
                f"{type(self).__name__} truncates float sample weights to integers ({self.dtype}, as "
                "Keras); pass integer weights, or dtype='float32'.",
                stacklevel=2,
            )
        weight = self._tensor(1 if sample_weight is None else sample_weight, self.dtype)
        weight = torch.broadcast_to(weight.reshape(-1) if weight.ndim > 1 else weight, y_true.shape)
        c = self.num_classes
        valid = (
            (y_true >= 0)
            & (y_true < c)
            & (y_pred >= 0)
            & (y_pred < c)
            & (y_true != (-1 if self.ignore_class is None else self.ignore_class))
        )
        index = torch.where(valid, y_true, 0).to(torch.int64) * c + torch.where(valid, y_pred, 0).to(torch.int64)
        self.total_cm.view(-1).index_add_(0, index, torch.where(valid, weight, 0))

    def result(self) -> torch.Tensor:
        cm, ids = self.total_cm, self.target_class_ids
        true_positives = cm.diagonal()[ids].float()
        denominator = (cm.sum(0) + cm.sum(1) - cm.diagonal())[ids].float()
        valid = denominator > 1e-9
        iou = torch.where(valid, true_positives / (denominator + EPSILON), 0.0)
        return iou.sum() / (valid.to(torch.float32).sum() + EPSILON)


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes; ``IoU``'s arguments but ``target_class_ids``.

    Example:
        >>> m = MeanIoU(num_classes=2)
        >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
        >>> m.result()
        tensor(0.3333)
    """

    _config_keys = ("num_classes", "ignore_class", "sparse_y_true", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            list(range(num_classes)),
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )


class BinaryIoU(IoU):
    """IoU of 0/1 labels against ``y_pred >= threshold`` (default 0.5), averaged over
    ``target_class_ids`` (default ``(0, 1)``). Also takes ``name`` and ``dtype``."""

    _config_keys = ("target_class_ids", "threshold")

    def __init__(
        self,
        target_class_ids: Sequence[int] = (0, 1),
        threshold: float = 0.5,
        name: str | None = None,
        dtype: Any = None,
    ):
        super().__init__(2, target_class_ids, name=name, dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = (self._tensor(y_pred, torch.float32) >= self.threshold).to(self.dtype)
        super().update_state(self._tensor(y_true, self.dtype), y_pred, sample_weight)


class OneHotIoU(IoU):
    """``IoU`` for one-hot labels: ``sparse_y_true=False``. Takes ``IoU``'s other arguments."""

    _config_keys = ("num_classes", "target_class_ids", "ignore_class", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            target_class_ids,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )


class OneHotMeanIoU(MeanIoU):
    """``MeanIoU`` for one-hot labels: ``sparse_y_true=False``. Takes ``MeanIoU``'s other arguments."""

    _config_keys = ("num_classes", "ignore_class", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ):
        super().__init__(
            num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )
