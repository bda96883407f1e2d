# SPDX-License-Identifier: Apache-2.0
"""What `compile(loss=, metrics=, loss_weights=, weighted_metrics=)` turns into.

Owns: resolving ids that depend on shapes ("accuracy", "crossentropy"), matching losses
and metrics to the outputs of multi-output modules, `loss_weights`, the names History
uses, and the first-batch checks (logits fed to a probability loss, sparse labels out of
range). Not: the loss or metric arithmetic (losses/, metrics/).

Which output a loss or metric trains on: engine/outputs.py.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from torchcompile import losses as losses_module
from torchcompile import metrics as metrics_module
from torchcompile.core.tree import flatten
from torchcompile.engine import distributed
from torchcompile.engine.outputs import (
    first_tensor,
    flatten_targets,
    output_names,
    select_output,
    single_prediction,
    split_outputs,
)
from torchcompile.losses import checks

ACCURACY_IDS = ("accuracy", "acc")  # resolved from shapes, as Keras' compile_utils does
CROSSENTROPY_IDS = ("crossentropy", "ce")


def check_ids(loss: Any, metrics: Any, weighted_metrics: Any) -> None:
    """Resolve every string id now, so a typo fails at compile time with close matches."""
    for get, spec in ((losses_module.get, loss), (metrics_module.get, metrics), (metrics_module.get, weighted_metrics)):
        for leaf in flatten(spec) if isinstance(spec, (list, tuple, dict)) else [spec]:
            if isinstance(leaf, str) and leaf.lower() not in ACCURACY_IDS + CROSSENTROPY_IDS:
                get(leaf)


def is_binary_or_sparse_categorical(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[bool, bool]:
    """Keras' shape rule behind "accuracy" and "crossentropy"."""
    y_t_last = y_true.shape[-1] if y_true.dim() else 1
    y_p_last = y_pred.shape[-1] if y_pred.dim() else 1
    is_binary = y_p_last == 1
    is_sparse = y_true.dim() < y_pred.dim() or (y_t_last == 1 and y_p_last > 1)
    return is_binary, is_sparse


def get_loss(identifier: Any, y_true: torch.Tensor, y_pred: torch.Tensor) -> Any:
    if isinstance(identifier, str) and identifier.lower() in CROSSENTROPY_IDS:
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true, y_pred)
        name = (
            "binary_crossentropy"
            if is_binary
            else "sparse_categorical_crossentropy"
            if is_sparse
            else "categorical_crossentropy"
        )
        loss = losses_module.get(name)
        loss.name = identifier
        return loss
    return losses_module.get(identifier)


def get_metric(identifier: Any, y_true: torch.Tensor, y_pred: torch.Tensor) -> Any:
    if isinstance(identifier, str) and identifier.lower() in ACCURACY_IDS:
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true, y_pred)
        cls = (
            metrics_module.BinaryAccuracy
            if is_binary
            else metrics_module.SparseCategoricalAccuracy
            if is_sparse
            else metrics_module.CategoricalAccuracy
        )
        return cls(name=identifier)
    if isinstance(identifier, str) and identifier.lower() in CROSSENTROPY_IDS:
        is_binary, is_sparse = is_binary_or_sparse_categorical(y_true, y_pred)
        cls = (
            metrics_module.BinaryCrossentropy
            if is_binary
            else metrics_module.SparseCategoricalCrossentropy
            if is_sparse
            else metrics_module.CategoricalCrossentropy
        )
        return cls(name=identifier)
    metric = metrics_module.get(identifier)
    if isinstance(identifier, str):
        metric.name = identifier  # Keras keeps the name the user wrote
    return metric


class CompiledLoss:
    """The total loss, Σ loss_weight × loss(y_true, y_pred, sample_weight) over outputs.

    As Keras' ``CompileLoss``, it is built from the first batch's shapes, and owns the
    trackers of a multi-output module's unweighted per-output losses (``metrics``), which it
    updates as it computes; the total's tracker belongs to the model. It also runs the
    one-off first-batch checks when ``request_checks`` asked for them.
    """

    def __init__(self, loss: Any, loss_weights: Any = None):
        self.loss = loss
        self.loss_weights = loss_weights
        self.built = False
        self.names: list[str] | None = None
        self.select: str | None = None  # the output one loss trains on, in a structured output
        self.entries: list[tuple[Any, float]] = []
        self.num_classes: list[int | None] = []
        self.metrics: list = []  # one Mean per output of a multi-output module
        self.checks_pending = False
        self._labels_to_check: Any = None

    def build(self, y_true: Any, y_pred: Any) -> None:
        self.select = single_prediction("loss", self.loss, y_true, y_pred)
        if self.select is not None:
            y_pred = select_output(y_pred, self.select)
        self.names = output_names(y_pred)
        preds = flatten_targets("y_pred", y_pred, self.names)
        trues = flatten_targets("y", y_true, self.names)
        losses = split_outputs("loss", self.loss, self.names)
        weights = split_outputs("loss_weights", self.loss_weights, self.names)
        self.entries = [
            (None if spec is None else get_loss(spec, y_t, y_p), 1.0 if w is None else float(w))
            for spec, w, y_t, y_p in zip(losses, weights, trues, preds)
        ]
        self.num_classes = [_num_classes(loss, y_p) for (loss, _), y_p in zip(self.entries, preds)]
        device = first_tensor(preds).device
        self.metrics = [metrics_module.Mean(name=f"{n}_loss").to(device) for n in self.names or []]
        self.built = True

    def request_checks(self, *labels: Any) -> None:
        """Check the next batch (a host sync, so once per run), and ``labels`` (the CPU copies of a
        run's whole label arrays: training's, and validation's so that bad validation labels are
        found before the first step) along with it."""
        self.checks_pending = True
        self._labels_to_check = [y for y in labels if y is not None]

    def check_first_batch(self, y_true: Any, y_pred: Any) -> None:
        """Logits fed to a probability loss, and sparse labels; syncs the host, so run it once."""
        preds = flatten_targets("y_pred", y_pred, self.names)
        for (loss, _), y_p in zip(self.entries, preds):
            if loss is not None:
                checks.check_probabilities(loss, y_p)
        self.check_labels(y_true)

    def check_labels(self, y_true: Any) -> None:
        """Sparse labels in range; run on CPU tensors so it never causes a device-side assert."""
        trues = flatten_targets("y", y_true, self.names)
        for (loss, _), y_t, classes in zip(self.entries, trues, self.num_classes):
            if loss is not None and y_t is not None and getattr(loss, "sparse_labels", False):
                checks.check_sparse_labels(loss, y_t, classes)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        """The total loss; a multi-output module's per-output losses go to their trackers."""
        if not self.built:
            if y_pred is None:
                raise ValueError(
                    "The module's forward returned None, so there is no prediction to compute the loss on; "
                    "return the output (a tensor, or a tuple/dict of tensors). Received: y_pred=None"
                )
            self.build(y_true, y_pred)
        if self.select is not None:
            y_pred = select_output(y_pred, self.select)
        if self.checks_pending:
            self._run_checks(y_true, y_pred)
        if self.names is None and self.entries[0][0] is not None:
            # One output: the hot path of every step, without the per-output bookkeeping below.
            loss, weight = self.entries[0]
            value = loss(y_true, y_pred, sample_weight=sample_weight)
            return value if weight == 1.0 else weight * value
        preds = flatten_targets("y_pred", y_pred, self.names)
        trues = flatten_targets("y", y_true, self.names)
        weights = flatten_targets("sample_weight", sample_weight, self.names)
        total = None
        for (loss, weight), tracker, y_t, y_p, sw in zip(self.entries, self.metrics, trues, preds, weights):
            if loss is None:
                continue
            value = loss(y_t, y_p, sample_weight=sw)
            tracker.update_state(value.detach(), sample_weight=flatten(y_p)[0].shape[0])  # unweighted (Keras)
            weighted = value if weight == 1.0 else weight * value  # no kernel for the usual weight 1
            total = weighted if total is None else total + weighted
        if total is None:
            raise ValueError(
                f"No output has a loss: give `loss` for at least one output in compile(). Received: loss={self.loss!r}"
            )
        return total

    def _run_checks(self, y_true: Any, y_pred: Any) -> None:
        self.checks_pending = False
        self.check_first_batch(y_true, y_pred)
        labels, self._labels_to_check = self._labels_to_check or [], None
        for y in labels:
            self.check_labels(y)


class CompiledMetrics:
    """The compiled metrics of every output, named as Keras names them in History."""

    def __init__(self, metrics: Any = None, weighted_metrics: Any = None):
        self.user_metrics = metrics
        self.user_weighted_metrics = weighted_metrics
        self.built = False
        self.entries: list[tuple[int, Any, bool]] = []  # (output index, metric, weighted)
        self.select: str | None = None  # the output flat metrics follow, in a structured output

    def build(self, y_true: Any, y_pred: Any, device: torch.device) -> None:
        specs = [spec for spec in (self.user_metrics, self.user_weighted_metrics) if spec]
        selects = {single_prediction("metrics", spec, y_true, y_pred) for spec in specs}
        if len(selects) > 1:  # flat metrics with per-output weighted_metrics, or the reverse
            raise ValueError(
                "`metrics` and `weighted_metrics` must both be flat or both per output for a module with "
                f"several outputs. Received: metrics={self.user_metrics!r}, "
                f"weighted_metrics={self.user_weighted_metrics!r}"
            )
        self.select = selects.pop() if selects else None
        if self.select is not None:
            y_pred = select_output(y_pred, self.select)
        names = output_names(y_pred)
        preds = flatten_targets("y_pred", y_pred, names)
        trues = flatten_targets("y", y_true, names)
        self.entries = []
        taken: dict[str, int] = {}
        given_names: dict[int, str] = {}  # a metric object's name before _unique_name renamed it
        for weighted, spec in ((False, self.user_metrics), (True, self.user_weighted_metrics)):
            per_output = split_outputs("metrics", spec, names) if spec is not None else [None] * len(preds)
            for index, (ids, y_t, y_p) in enumerate(zip(per_output, trues, preds)):
                for identifier in _as_list(ids):
                    metric = get_metric(identifier, y_t, y_p)
                    if id(metric) in given_names:  # one metric object listed for several outputs: each gets its own
                        metric = copy.deepcopy(metric)
                        metric.name = given_names[id(identifier)]
                    given_names.setdefault(id(metric), metric.name)
                    metric = metric.to(device)
                    metric.name = _unique_name(metric.name, names and names[index], weighted, taken)
                    self.entries.append((index, metric, weighted))
        self.names = names
        self.built = True
        distributed.disable_foreign_sync(self.metrics)  # torchmetrics: synced once per epoch instead

    @property
    def metrics(self) -> list:
        """The metric objects, in compile order."""
        return [metric for _, metric, _ in self.entries]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if not self.built:
            self.build(y_true, y_pred, first_tensor(y_pred).device)
        if self.select is not None:  # detached here too: map_structure leaves a dataclass's fields as they are
            y_pred = _detached(select_output(y_pred, self.select))
        if self.names is None:  # one output: every metric sees the whole of y_true and y_pred
            for _, metric, weighted in self.entries:
                metric.update_state(y_true, y_pred, sample_weight=sample_weight if weighted else None)
            return
        preds = flatten_targets("y_pred", y_pred, self.names)
        trues = flatten_targets("y", y_true, self.names)
        weights = flatten_targets("sample_weight", sample_weight, self.names)
        for index, metric, weighted in self.entries:
            metric.update_state(trues[index], preds[index], sample_weight=weights[index] if weighted else None)

    def reset_state(self) -> None:
        for _, metric, _ in self.entries:
            metric.reset_state()

    def results(self) -> dict[str, Any]:
        return {metric.name: metric.result() for _, metric, _ in self.entries}


def _unique_name(name: str, output: str | None, weighted: bool, taken: dict[str, int]) -> str:
    """Keras' History names: ``output_metric``; a clash gets ``_1``, ``_2``..., and a weighted
    metric clashing with an unweighted one becomes ``weighted_metric`` (compile_utils.result)."""
    full = f"{output}_{name}" if output else name
    if full in taken and weighted:
        full = f"{output}_weighted_{name}" if output else f"weighted_{name}"
    if full in taken:
        taken[full] += 1
        full = f"{full}_{taken[full] - 1}"
    taken.setdefault(full, 1)
    return full


def _num_classes(loss: Any, y_pred: torch.Tensor) -> int | None:
    """Classes along the loss's class axis (-1 for Keras losses, 1 for torch's CrossEntropyLoss)."""
    if not y_pred.dim():
        return None
    return y_pred.shape[getattr(loss, "class_axis", -1)]


def _detached(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else value


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
