# SPDX-License-Identifier: Apache-2.0
"""How a model spreads over the processes torchrun starts: ``tc.Model(module, distribution=...)``.

Owns the public description, in the spirit of Keras 3's ``keras.distribution`` (a distribution
object, or a global one set with ``set_distribution``): ``DataParallel`` (a whole copy of the
model per process, gradients averaged by DDP; the default under torchrun) and ``FSDP`` (sharded
data parallel with torch's ``fully_shard``: each process holds 1/N of the parameters, gradients
and optimizer state). ``"data_parallel"``/``"ddp"`` and ``"fsdp"`` are their short names.
Not: what they do to a module (engine/distributed.py wraps in DDP, engine/sharding.py shards).

Example:
    >>> import torchcompile as tc
    >>> tc.distribution.get("fsdp")
    FSDP(modules=None, reshard_after_forward=True, mixed_precision='auto', find_unused_parameters=False)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Distribution", "DataParallel", "FSDP", "get", "set_distribution", "distribution"]


class Distribution:
    """Base class: how the model's weights and the batches are spread over the processes."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


class DataParallel(Distribution):
    """Every process holds the whole model and trains on its share of each global batch (DDP).

    Args:
        find_unused_parameters: let some parameters get no gradient on a step (a branch the
            forward skips on some batches). It costs a walk of the autograd graph per step,
            so it is off by default; without it such a step stops with an error naming this option.
    """

    def __init__(self, find_unused_parameters: bool = False):
        self.find_unused_parameters = bool(find_unused_parameters)


class FSDP(Distribution):
    """Sharded data parallel (torch's FSDP2, ``torch.distributed.fsdp.fully_shard``).

    Each process keeps 1/N of every parameter, of its gradient and of its optimizer state;
    a sharded module gathers its whole parameters for its forward and backward and frees them
    after. Launch with torchrun (at least 2 processes).

    Args:
        modules: the submodules to shard as units, each gathered on its own (then the root takes
            the rest): module classes (every instance), qualified names from ``named_modules()``
            (shell patterns such as ``"encoder.layer.*"``) or module objects. None: the repeated
            blocks that hold most of the parameters (the layers of an ``nn.ModuleList`` or
            ``nn.Sequential``, such as transformer blocks), else each child of the root holding
            at least a tenth of them. ``[]``: the root alone. A submodule that runs on some
            processes only (a data-dependent branch) must not be a unit of its own: every process
            gathers a unit's parameters together, so one that skips it leaves the others waiting.
        reshard_after_forward: free the gathered parameters after each unit's forward, and
            gather them again for the backward (less memory, one more all-gather); False keeps
            them until the backward.
        mixed_precision: "auto" gathers the parameters in the compute dtype of the dtype policy
            in force when the model is built (``tc.mixed_precision.set_global_policy``) and
            reduces gradients in float32; None never casts; or a
            ``torch.distributed.fsdp.MixedPrecisionPolicy``.
        find_unused_parameters: reduce a zero gradient for parameters that got none on this
            process, so processes taking different branches inside a unit agree (FSDP2's
            ``set_reduce_scatter_unused_params``).
    """

    def __init__(
        self,
        modules: Any = None,
        reshard_after_forward: bool = True,
        mixed_precision: Any = "auto",
        find_unused_parameters: bool = False,
    ):
        if isinstance(modules, (str, type)) or (modules is not None and not isinstance(modules, (list, tuple))):
            modules = [modules]
        self.modules = list(modules) if modules is not None else None
        self.reshard_after_forward = bool(reshard_after_forward)
        if isinstance(mixed_precision, str) and mixed_precision != "auto":
            raise ValueError(
                "`mixed_precision` is 'auto' (from the dtype policy), None or a torch.distributed.fsdp."
                f"MixedPrecisionPolicy. Received: mixed_precision={mixed_precision!r}"
            )
        self.mixed_precision = mixed_precision
        self.find_unused_parameters = bool(find_unused_parameters)


_NAMES = {"data_parallel": DataParallel, "ddp": DataParallel, "fsdp": FSDP}
_global: Distribution | None = None


def get(identifier: Any) -> Distribution | None:
    """A ``Distribution`` from a short name, an instance or None (the global one, if set)."""
    if identifier is None:
        return _global
    if isinstance(identifier, Distribution):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _NAMES:
        return _NAMES[identifier.lower()]()
    raise ValueError(
        f"Unknown distribution {identifier!r}: pass 'data_parallel' (or 'ddp'), 'fsdp', a "
        "tc.distribution.DataParallel(...) or tc.distribution.FSDP(...), or None. "
        f"Received: distribution={identifier!r}"
    )


def set_distribution(value: Any) -> None:
    """Keras' ``set_distribution``: the distribution of models built without one (None: back to the default)."""
    global _global
    _global = get(value) if value is not None else None


def distribution() -> Distribution | None:
    """The distribution ``set_distribution`` set, or None (Keras' ``keras.distribution.distribution()``)."""
    return _global
