# SPDX-License-Identifier: Apache-2.0
"""How a batch's inputs reach the module. Owns: the rule for tuples, lists and dicts, and the
hints added to torch's errors where they mislead a Keras user (channels-last images).

A tuple or list is passed as positional inputs, a dict as keyword inputs when the forward
takes those names (as one dict when it takes a single input and none of those names), and
anything else as the single input.
"""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Callable

from torch import nn


def call(module: Any, x: Any, signature_of: nn.Module | None = None) -> Any:
    """``module(*x)``, ``module(**x)`` or ``module(x)`` by the rule above.

    ``signature_of`` is the module whose forward names the arguments, when ``module`` wraps
    it (DistributedDataParallel).
    """
    if isinstance(x, (tuple, list)):
        return module(*x)
    if isinstance(x, dict) and takes_keywords(signature_of or module, x):
        return module(**x)
    return module(x)


def takes_keywords(module: nn.Module, x: dict) -> bool:
    """True: pass the dict ``x`` as keyword arguments; False: pass it as one argument.

    Keywords when forward takes ``**kwargs`` or every key names one of its arguments; one
    dict when no key does and forward takes a single input. Anything else (some keys match,
    or none match and forward needs several inputs) is a ValueError naming the keys. The
    answer is kept per class and keys (reading a signature costs more than a small step).
    """
    if "forward" in vars(module):  # a forward set on the instance: not the class's
        return _takes_keywords(module, x)
    key = (type(module), tuple(x))
    answer = _KEYWORDS.get(key)
    if answer is None:
        if len(_KEYWORDS) >= 1024:
            _KEYWORDS.clear()
        answer = _KEYWORDS[key] = _takes_keywords(module, x)
    return answer


_KEYWORDS: dict[tuple[type, tuple], bool] = {}


def _takes_keywords(module: nn.Module, x: dict) -> bool:
    try:
        parameters = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    kind = inspect.Parameter
    if any(p.kind is kind.VAR_KEYWORD for p in parameters):
        return True
    names = [p.name for p in parameters if p.kind in (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)]
    unknown = [k for k in x if k not in names]
    if not unknown:
        return True
    positional = [p for p in parameters if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    one_input = len(required) <= 1 and (positional or any(p.kind is kind.VAR_POSITIONAL for p in parameters))
    if len(unknown) == len(x) and one_input:
        return False
    signature = ", ".join(str(p) for p in parameters)
    raise ValueError(
        f"The input dict has keys {unknown} that match no argument of "
        f"{type(module).__name__}.forward({signature}). A dict input is passed as keyword "
        "arguments when every key names a forward argument, or as one dict when no key does "
        "and forward takes a single input. Rename the keys to forward's arguments. "
        f"Received: x keys={list(x)}"
    )


def forward(
    module: nn.Module, args: tuple, kwargs: dict, training: bool | None, through: Any = None, method: str = "forward"
) -> Any:
    """``module(*args, **kwargs)`` as ``model(...)`` calls it: one argument goes by the rule above;
    Keras' ``training`` is passed on when ``method`` takes it, else dropped after switching
    train/eval mode (as Keras' torch module wrapper does). ``through`` is the module's
    DistributedDataParallel wrapper, when it records gradients under several processes."""
    if training is not None:
        if takes_argument(module, "training", method):
            kwargs["training"] = training
        elif module.training != training:
            module.train(training)
    target = getattr(module, method) if method != "forward" else (through or module)
    try:  # free until something raises: the hints cost nothing on the hot path
        if len(args) == 1 and not kwargs and method == "forward":
            return call(target, args[0], signature_of=module)
        return target(*args, **kwargs)
    except RuntimeError as error:
        raise_with_hint(error)


# torch's convolutions: "Given groups=1, weight of size [4, 1, 3, 3], expected input[2, 28, 28, 1] to have
# 1 channels, but got 28 channels instead" ("Given transposed=1, ..." for ConvTranspose).
_CHANNELS_ERROR = re.compile(r"weight of size \[([\d, ]+)\], expected input\[([\d, ]+)\] to have (\d+) channels")
_LAYOUTS = {  # spatial dims: (what, Keras' layout, torch's layout)
    1: ("sequences", "(N, L, C)", "(N, C, L)"),
    2: ("images", "(N, H, W, C)", "(N, C, H, W)"),
    3: ("volumes", "(N, D, H, W, C)", "(N, C, D, H, W)"),
}


def raise_with_hint(error: RuntimeError) -> None:
    """Raise ``error`` from a module's forward, with the fix appended when it is a known layout mistake."""
    hint = channels_last_hint(error)
    if hint is None:
        raise error
    raise RuntimeError(f"{error}\n\n{hint}") from error


def channels_last_hint(error: BaseException) -> str | None:
    """The fix for a convolution fed channels-last data (Keras' layout), or None for other errors.

    Read from torch's message: the input's last dimension is the channel count the layer wants.
    """
    match = _CHANNELS_ERROR.search(str(error))
    if match is None:
        return None
    weight = [int(v) for v in match[1].split(",")]
    shape = [int(v) for v in match[2].split(",")]
    channels, spatial = int(match[3]), len(weight) - 2
    if len(shape) != spatial + 2 or shape[-1] != channels or spatial not in _LAYOUTS:
        return None
    what, keras_layout, torch_layout = _LAYOUTS[spatial]
    order = ", ".join(map(str, (0, spatial + 1, *range(1, spatial + 1))))
    return (
        f"Hint: your {what} look channels-last (Keras' layout, {keras_layout}); torch's Conv{spatial}d wants "
        f"{torch_layout}: x.transpose({order}) on a NumPy array, or torch.permute(x, ({order})) on a tensor, "
        f"before fit/predict. Received: input shape={tuple(shape)}"
    )


def takes_argument(module: Any, name: str, method: str = "forward") -> bool:
    """Whether ``module``'s ``method`` names an argument ``name`` (cached per class)."""
    return name in _argument_names(getattr(type(module), method, None))


@functools.lru_cache(maxsize=512)
def _argument_names(function: Callable | None) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return frozenset()


def with_labels(module: nn.Module, x: Any, y: Any) -> Any:
    """A dict batch's inputs, with ``labels=y`` when the forward takes ``labels`` (Hugging Face models
    compute their own loss from them)."""
    take = isinstance(x, dict) and y is not None and takes_argument(module, "labels")
    return {**x, "labels": y} if take else x
