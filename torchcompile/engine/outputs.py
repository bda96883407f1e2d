# SPDX-License-Identifier: Apache-2.0
"""How compile's losses and metrics map onto a module's outputs.

Owns: naming outputs (dict keys, namedtuple and dataclass fields, ``output_1``... for lists),
choosing the one prediction a single loss trains on, splitting per-output specs and targets,
and the loss a module's output carries. Structured outputs (a dict, a namedtuple, a dataclass,
a Hugging Face ``ModelOutput``) have names. With one loss (or flat metrics) and one target, the
prediction is the output named ``logits`` (Hugging Face's convention), or the only output;
several outputs and no ``logits`` is an error naming them: one loss is never spread over
several outputs. A dict of losses keyed by output names, or a target per output, is Keras'
multi-output case.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from torchcompile.core.tree import flatten

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


def carried_loss(y_pred: Any) -> torch.Tensor | None:
    """The loss a module's output carries (Hugging Face's ``output.loss``, or a ``"loss"`` key)."""
    loss = y_pred.get("loss") if isinstance(y_pred, dict) else getattr(y_pred, "loss", None)
    return loss if isinstance(loss, torch.Tensor) else None
