# SPDX-License-Identifier: Apache-2.0
"""model.summary(): Keras' table of layers, output shapes and parameter counts.

Owns: walking the module tree, output shapes through forward hooks (one forward on zeros
of ``input_shape``, or hooks left on the module that record the shapes of the first batch
it next sees and then remove themselves), parameter counting and the table's layout.
Not: running batches (fit / evaluate / predict do that).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["print_summary", "count_parameters", "readable_size"]

# Output shapes recorded per module, by qualified submodule name ("" is the root).
_SHAPES: weakref.WeakKeyDictionary[nn.Module, dict[str, str]] = weakref.WeakKeyDictionary()
_WATCHED: weakref.WeakKeyDictionary[nn.Module, list] = weakref.WeakKeyDictionary()
_HEADER = ("Layer (type)", "Output Shape", "Param #")


def print_summary(
    model: Any,
    input_shape: Any = None,
    line_length: int | None = None,
    print_fn: Callable[[str], Any] | None = None,
    expand_nested: bool = False,
) -> None:
    """Print the summary of ``model.module`` through ``print_fn`` (default ``print``).

    Args:
        model: a ``tc.Model``.
        input_shape: the shape of one sample (no batch dimension), or a list of them for
            several inputs; the module then runs once on zeros to find the output shapes.
            Without it, shapes recorded from the first batch the module saw are shown, and
            "?" until it has seen one.
        line_length: total width of the table (default: fitted to the content).
        print_fn: called with each line.
        expand_nested: list the submodules of submodules too, indented.
    """
    module = model.module
    if input_shape is not None:
        _record_from_zeros(module, input_shape, model.device)
    else:
        record_shapes_once(module)
    shapes = _SHAPES.get(module, {})
    rows = [
        (
            f"{'  ' * depth}{name.rsplit('.', 1)[-1]} ({type(child).__name__})",
            shapes.get(name, "?"),
            f"{_own_and_nested(child):,}",
        )
        for depth, name, child in _walk(module, expand_nested)
    ]
    own = sum(p.numel() for p in module.parameters(recurse=False))
    if own:
        rows.append((f"(parameters of {type(module).__name__})", "", f"{own:,}"))
    lines = [f'Model: "{type(module).__name__}"', *_table(rows, line_length)]
    lines += _totals(module, getattr(model, "optimizer", None))
    for line in lines:
        (print_fn or print)(line)


def _walk(module: nn.Module, expand_nested: bool, prefix: str = "", depth: int = 0):
    for name, child in module.named_children():
        qualified = f"{prefix}{name}"
        yield depth, qualified, child
        if expand_nested:
            yield from _walk(child, True, qualified + ".", depth + 1)


def _own_and_nested(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_parameters(module: nn.Module) -> dict[str, tuple[int, int]]:
    """``{"total"|"trainable"|"non_trainable": (count, bytes)}``; buffers count as non-trainable (Keras)."""
    seen: set[int] = set()
    trainable, frozen = [0, 0], [0, 0]
    tensors = [(p, p.requires_grad) for p in module.parameters()] + [(b, False) for b in module.buffers()]
    for tensor, trains in tensors:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        bucket = trainable if trains else frozen
        bucket[0] += tensor.numel()
        bucket[1] += tensor.numel() * tensor.element_size()
    return {
        "total": (trainable[0] + frozen[0], trainable[1] + frozen[1]),
        "trainable": tuple(trainable),
        "non_trainable": tuple(frozen),
    }


def readable_size(nbytes: float) -> str:
    """Keras' memory size: ``440.00 B``, ``1.50 KB``, ``2.00 MB`` (base 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _totals(module: nn.Module, optimizer: torch.optim.Optimizer | None) -> list[str]:
    counts = count_parameters(module)
    lines = [
        f" Total params: {counts['total'][0]:,} ({readable_size(counts['total'][1])})",
        f" Trainable params: {counts['trainable'][0]:,} ({readable_size(counts['trainable'][1])})",
        f" Non-trainable params: {counts['non_trainable'][0]:,} ({readable_size(counts['non_trainable'][1])})",
    ]
    state = [
        t
        for s in (optimizer.state.values() if optimizer is not None else ())
        for t in s.values()
        if isinstance(t, torch.Tensor) and t.dim() > 0
    ]
    if state:
        count, nbytes = sum(t.numel() for t in state), sum(t.numel() * t.element_size() for t in state)
        lines.append(f" Optimizer params: {count:,} ({readable_size(nbytes)})")
    return lines


def _table(rows: list[tuple[str, str, str]], line_length: int | None) -> list[str]:
    widths = [max(len(_HEADER[i]), *(len(r[i]) for r in rows)) + 2 if rows else len(_HEADER[i]) + 2 for i in range(3)]
    widths = [max(widths[0], 31), max(widths[1], 24), max(widths[2], 15)]
    if line_length is not None:
        widths[0] = max(len(_HEADER[0]) + 2, line_length - widths[1] - widths[2] - 4)

    def line(cells: tuple[str, str, str], edge: str = "│", sep: str = "│") -> str:
        left, shape, count = (f" {c} " for c in cells)
        return f"{edge}{left:<{widths[0]}}{sep}{shape:<{widths[1]}}{sep}{count:>{widths[2]}}{edge}"

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    body = [line(r) for r in rows]
    return [
        rule("┏", "┳", "┓", "━"),
        line(_HEADER, "┃", "┃"),
        rule("┡", "╇", "┩", "━"),
        *body,
        rule("└", "┴", "┘", "─"),
    ]


# ---------------------------------------------------------------- output shapes
def _describe(output: Any) -> str:
    """Keras' shape text: the batch dimension is None; tuples/lists/dicts of outputs nest."""
    if isinstance(output, torch.Tensor):
        dims = ["None", *map(str, output.shape[1:])] if output.dim() else []
        return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"
    if isinstance(output, (tuple, list)):
        return "[" + ", ".join(_describe(o) for o in output) + "]"
    if isinstance(output, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in output.items()) + "}"
    return "?"


def _hooks(module: nn.Module, shapes: dict[str, str], on_repeat: Any = None) -> list:
    """Forward hooks recording each submodule's output shape; ``on_repeat()`` runs when a submodule
    already recorded runs again (a second forward)."""

    def record(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if name in shapes:
                if on_repeat is not None:
                    on_repeat()
                return
            shapes[name] = _describe(output)

        return hook

    return [sub.register_forward_hook(record(name)) for name, sub in module.named_modules()]


def record_shapes_once(module: nn.Module) -> None:
    """Leave hooks that record the shapes of the next forward, then remove themselves.

    `fit`, `evaluate` and `predict` call this, so a summary after training shows the shapes.
    """
    if module in _WATCHED or module in _SHAPES:
        return
    shapes: dict[str, str] = {}

    def done(*_: Any) -> None:
        for handle in _WATCHED.pop(module, []):
            handle.remove()
        _SHAPES[module] = shapes

    # A model that is its own network runs call(), not its own forward hook: the next forward ends it.
    handles = _hooks(module, shapes, on_repeat=done if getattr(module, "module", None) is module else None)
    handles.append(module.register_forward_hook(done))  # registered last: runs after the root's record
    _WATCHED[module] = handles


def _record_from_zeros(module: nn.Module, input_shape: Any, device: torch.device) -> None:
    """One forward on zeros of ``(1, *input_shape)`` (one per input for a list), in eval mode."""
    several = isinstance(input_shape, list) and all(isinstance(s, (tuple, list)) for s in input_shape)
    shapes_in = input_shape if several else [input_shape]
    inputs = [torch.zeros((1, *tuple(s)), device=device) for s in shapes_in]
    shapes: dict[str, str] = {}
    handles = _hooks(module, shapes)
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    _SHAPES[module] = shapes
