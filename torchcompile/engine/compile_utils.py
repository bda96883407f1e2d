# SPDX-License-Identifier: Apache-2.0
"""What `compile(loss=, metrics=, loss_weights=, weighted_metrics=)` turns into.

Owns: resolving ids that depend on shapes ("accuracy", "crossentropy"), matching losses
and metrics to the outputs of multi-output modules, `loss_weights`, the names History
uses, and the first-batch checks (logits fed to a probability loss, sparse labels out of
range). Not: the loss or metric arithmetic (losses/, metrics/).

Structured outputs (a dict, a namedtuple, a dataclass, a Hugging Face ``ModelOutput``) have
names. With one loss (or flat metrics) and one target, the prediction is the output named
``logits`` (Hugging Face's convention), or the only output; several outputs and no ``logits``
is an error naming them: one loss is never spread over several outputs. A dict of losses
keyed by output names, or a target per output, is Keras' multi-output case.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from torchcompile import losses as losses_module
from torchcompile import metrics as metrics_module
from torchcompile.core.tree import flatten
from torchcompile.engine import distributed
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


PREDICTION_NAME = "logits"  # the Hugging Face convention: the output a single loss trains on


def named_outputs(y_pred: Any) -> dict[str, Any] | None:
    """A structured output's values by name (dict, namedtuple, dataclass, ``ModelOutput``), else None.

    Leaves out entries that are None and a carried ``loss`` (a 0-d tensor, Hugging Face's
    ``output.loss``): it is what the module computed, not a prediction.
    """
    if isinstance(y_pred, dict):  # ModelOutput is an OrderedDict of its non-None fields
        items = y_pred.items()
    elif isinstance(y_pred, tuple) and hasattr(y_pred, "_fields"):
        items = zip(y_pred._fields, y_pred)
    elif dataclasses.is_dataclass(y_pred) and not isinstance(y_pred, type):
        items = ((f.name, getattr(y_pred, f.name)) for f in dataclasses.fields(y_pred))
    else:
        return None
    return {k: v for k, v in items if v is not None and not _is_carried_loss(k, v)}


def _is_carried_loss(name: str, value: Any) -> bool:
    return name == "loss" and isinstance(value, torch.Tensor) and value.dim() == 0


def output_names(y_pred: Any) -> list[str] | None:
    """Names of a multi-output module's outputs: dict keys (namedtuple and dataclass fields),
    else output_1, output_2, ... for a list or tuple; None for a single output."""
    named = named_outputs(y_pred)
    if named is not None:
        return list(named)
    if isinstance(y_pred, (list, tuple)):
        return [f"output_{i + 1}" for i in range(len(y_pred))]
    return None


def single_prediction(what: str, spec: Any, y_true: Any, y_pred: Any) -> str | None:
    """The name of the output one loss (``what="loss"``) or flat metrics train on, or None.

    None when this is not the one-spec, one-target, structured-output case (a single tensor,
    a dict of losses, a target per output: Keras' rules apply). Otherwise ``logits``, or the
    only output; several outputs without ``logits`` (or an unnamed list of several outputs)
    is a ValueError: one loss is never spread over several outputs.
    """
    if not isinstance(y_true, torch.Tensor) or isinstance(y_pred, torch.Tensor) or not _is_flat(what, spec):
        return None
    named = named_outputs(y_pred)
    given = "one loss" if what == "loss" else "one list of metrics"
    if named is None:
        if not isinstance(y_pred, (list, tuple)):
            return None
        raise ValueError(
            f"The module returns {len(y_pred)} outputs (a {type(y_pred).__name__}) but `y` is one target and "
            f"compile() got {given}, so it is unclear which output {given} applies to; torchcompile does not "
            f"spread it over several outputs. Give one target per output (y=[y_1, y_2, ...]) with one entry per "
            f"output in compile(), or return a dict with the prediction under the key {PREDICTION_NAME!r}. "
            f"Received: {what}={spec!r}, outputs={output_names(y_pred)}"
        )
    if PREDICTION_NAME in named:
        return PREDICTION_NAME
    if len(named) == 1:
        return next(iter(named))
    names = list(named)
    raise ValueError(
        f"The module returns several outputs {names}, `y` is one target and compile() got {given}, so it is "
        f"unclear which output {given} applies to; torchcompile does not spread it over several outputs. "
        f"Name the output: compile(loss={{{names[0]!r}: ...}}, metrics={{{names[0]!r}: [...]}}), or return the "
        f"prediction under the key {PREDICTION_NAME!r} (the Hugging Face convention). "
        f"Received: {what}={spec!r}, outputs={names}"
    )


def _is_flat(what: str, spec: Any) -> bool:
    """One loss, or a flat list of metrics (not a dict, not one list per output)."""
    if isinstance(spec, dict):
        return False
    if what == "loss":
        return not isinstance(spec, (list, tuple))
    return not (isinstance(spec, (list, tuple)) and any(isinstance(s, (list, tuple, dict)) for s in spec))


def select_output(y_pred: Any, name: str) -> Any:
    """The output ``name`` of a structured output (a dict key or an attribute)."""
    return y_pred[name] if isinstance(y_pred, dict) else getattr(y_pred, name)


def split_outputs(name: str, value: Any, names: list[str] | None) -> list[Any]:
    """One entry per output: a dict by output name, a list by position, else the same for all."""
    if names is None:
        return [value]
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(
                f"`{name}` names outputs {unknown} that the module does not return; its outputs "
                f"are {names}. Received: {name} keys={sorted(value)}"
            )
        return [value.get(n) for n in names]
    if (
        isinstance(value, (list, tuple))
        and len(value) == len(names)
        and (name != "metrics" or all(isinstance(v, (list, tuple, type(None))) for v in value))
    ):
        return list(value)
    if isinstance(value, (list, tuple)) and name in ("loss", "loss_weights"):
        raise ValueError(
            f"`{name}` has {len(value)} entries but the module returns {len(names)} outputs "
            f"{names}. Give one per output, or a dict keyed by output name. "
            f"Received: {name}={value!r}"
        )
    return [value] * len(names)


def flatten_targets(name: str, value: Any, names: list[str] | None) -> list[Any]:
    """Targets, sample weights or predictions (``name="y_pred"``) per output, in the order of ``names``."""
    if names is None or value is None or isinstance(value, torch.Tensor):
        return [value] * (len(names) if names else 1)
    if name == "y_pred":
        named = named_outputs(value)
        if named is not None:
            return [named.get(n) for n in names]
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing and name == "y":
            raise ValueError(
                f"Targets are missing for outputs {missing}; y must have one entry per output "
                f"{names}. Received: y keys={sorted(value)}"
            )
        return [value.get(n) for n in names]
    if len(value) != len(names):
        raise ValueError(
            f"The module returns {len(names)} outputs {names} but `{name}` has {len(value)} "
            f"entries; give one per output. Received: len({name})={len(value)}"
        )
    return list(value)


def first_tensor(structure: Any) -> torch.Tensor:
    """The first tensor of a (possibly structured) output, for its device and batch size."""
    named = named_outputs(structure)
    leaves = flatten(list(named.values()) if named is not None else structure)
    return next(leaf for leaf in leaves if isinstance(leaf, torch.Tensor))


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

    def request_checks(self, labels: Any = None) -> None:
        """Check the next batch (a host sync, so once per run), and ``labels`` (the CPU copy of a
        run's whole label array) along with it."""
        self.checks_pending = True
        self._labels_to_check = labels

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
        if self._labels_to_check is not None:
            labels, self._labels_to_check = self._labels_to_check, None
            self.check_labels(labels)


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
        for weighted, spec in ((False, self.user_metrics), (True, self.user_weighted_metrics)):
            per_output = split_outputs("metrics", spec, names) if spec is not None else [None] * len(preds)
            for index, (ids, y_t, y_p) in enumerate(zip(per_output, trues, preds)):
                for identifier in _as_list(ids):
                    metric = get_metric(identifier, y_t, y_p).to(device)
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


def carried_loss(y_pred: Any) -> torch.Tensor | None:
    """The loss a module's output carries (Hugging Face's ``output.loss``, or a ``"loss"`` key)."""
    loss = y_pred.get("loss") if isinstance(y_pred, dict) else getattr(y_pred, "loss", None)
    return loss if isinstance(loss, torch.Tensor) else None
