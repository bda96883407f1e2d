# SPDX-License-Identifier: Apache-2.0
"""Gradient accumulation in the default train step: Keras 3's ``gradient_accumulation_steps``.

Owns: deciding, per train step, whether the optimizer updates (every N-th Keras iteration) or
the gradient only adds to the running sum; the mean of the N gradients at the update; Keras'
iteration counting on the steps that do not update (the schedule and the EMA still move,
``step_hooks.KerasStepHooks.advance``); DDP's all-reduce on update steps only (``no_sync()``
otherwise); and the running sums as part of the optimizer's ``state_dict`` (as Keras keeps its
accumulators among the optimizer's variables), so ``BackupAndRestore``, ``model.save`` and a
plain ``optimizer.state_dict()`` resume mid-accumulation exactly.
Not: the update itself (the torch optimizer and its step hooks) or the float16 scaler
(mixed_precision.Precision, which unscales the sum once per update).

Keras' rule (``base_optimizer._backend_apply_gradients``): iteration ``i`` (its raw counter,
0-based) updates when ``(i + 1) % N == 0``, with ``(g + acc) / N``; clipping and weight decay
apply to that mean; ``iterations`` counts updates; schedules read the raw counter. Here the
``.grad`` tensors hold the running sum (no second buffer): ``zero_grad`` at the start of a cycle,
``backward`` adds, and the update divides by N before the optimizer's step. The counter is the
``accumulated_steps`` entry of every param group, a Python int: whether a step updates is known
on the host, with no device read. A partial sum carries across epochs and ``fit`` calls, as in
Keras; ``train_on_batch`` counts on the same counter.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any

import torch
import torch.distributed as dist

from torchcompile.core import process
from torchcompile.optimizers.step_hooks import hooks_of

__all__ = ["GradientAccumulation", "attach"]

_ATTACHED: weakref.WeakKeyDictionary[torch.optim.Optimizer, GradientAccumulation] = weakref.WeakKeyDictionary()
STATE_KEY = "gradient_accumulation"  # the optimizer state_dict's entry holding the running sums


def attach(optimizer: torch.optim.Optimizer | None, steps: int | None, precision: Any, ddp: Any = None) -> Any:
    """The accumulation compile() sets up over ``optimizer`` (None when ``steps`` is falsy).

    Replaces what an earlier compile attached to the same torch optimizer, and tells its Keras
    step hooks how many steps are in effect (1 without accumulation).
    """
    if optimizer is None:
        return None
    previous = _ATTACHED.pop(optimizer, None)
    if previous is not None:
        previous.detach()
    hooks = hooks_of(optimizer)
    if hooks is not None:
        hooks.accumulation_steps = steps or 1
    if not steps:
        return None
    accumulation = GradientAccumulation(optimizer, steps, precision, ddp)
    _ATTACHED[optimizer] = accumulation
    return accumulation


class GradientAccumulation:
    """Accumulates ``steps`` micro-batches' gradients per optimizer update.

    Args:
        optimizer: the torch optimizer (any; a spec-built one's step hooks get Keras' counting).
        steps: N, an integer >= 2.
        precision: the model's ``mixed_precision.Precision`` (loss scaling under float16).
        ddp: the DistributedDataParallel wrapper under several processes, else None.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int, precision: Any, ddp: Any = None):
        self.optimizer, self.steps, self.precision, self.ddp = optimizer, steps, precision, ddp
        self.hooks = hooks_of(optimizer)
        self._no_sync: contextlib.AbstractContextManager | None = None
        self._gathered: list | None = None  # every process's running sums, for rank 0's backup
        self._stepping = False  # this accumulation is calling optimizer.step()
        self._warned = False
        self._handles = [
            optimizer.register_state_dict_post_hook(self._save_sums),
            optimizer.register_load_state_dict_pre_hook(self._load_sums),
            optimizer.register_step_pre_hook(self._warn_on_a_foreign_step),
        ]
        if ddp is not None:
            # DDP decides in its forward whether the coming backward all-reduces, so the
            # decision is made before the forward, from the counter.
            self._handles.append(ddp.register_forward_pre_hook(self._before_forward))

    # ------------------------------------------------------------ the counter
    @property
    def accumulated(self) -> int:
        """The micro-batches whose gradients ``.grad`` holds now (0 after an update)."""
        return self.optimizer.param_groups[0].get("accumulated_steps", 0)

    @property
    def update_due(self) -> bool:
        """Whether the next train step updates the weights (Keras: ``(iterations + 1) % N == 0``)."""
        return self.accumulated + 1 >= self.steps

    def _count(self, value: int) -> None:
        for group in self.optimizer.param_groups:
            group["accumulated_steps"] = value

    # ------------------------------------------------------------ the step
    def backward_and_step(self, loss: torch.Tensor) -> None:
        """``backward`` into the running sum; on every N-th call, the update with the mean."""
        self._gathered = None
        accumulated = self.accumulated
        if accumulated == 0:
            self.optimizer.zero_grad(set_to_none=True)  # a new sum starts
        self.precision.backward(loss)
        if accumulated + 1 < self.steps:
            self._count(accumulated + 1)
            if self.hooks is not None:
                self.hooks.advance(self.optimizer)  # Keras' iteration without an update
            return
        self._count(0)  # before the step: its post-hook sets the rate for the raw counter that follows
        self._stepping = True
        try:
            self.precision.step(self.optimizer, divide_by=self.steps)
        finally:
            self._stepping = False

    def _warn_on_a_foreign_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """A step from elsewhere (a custom ``train_step``, the user's own loop) updates on every call: say so once."""
        if self._stepping or self._warned:
            return
        self._warned = True
        warnings.warn(
            f"gradient_accumulation_steps={self.steps} applies to fit's and train_on_batch's default train step; "
            "this optimizer.step() call (a custom train_step, or a loop of your own) updates the weights on every "
            "call, with the gradients as they are. In a custom train_step, accumulate yourself: skip zero_grad() "
            f"and step() on all but every {self.steps}th call, and divide the gradients by {self.steps}. "
            f"Received: gradient_accumulation_steps={self.steps}",
            RuntimeWarning,
            stacklevel=3,
        )

    def _before_forward(self, module: Any, args: Any) -> None:
        """DDP: a step that does not update keeps its gradient local (``no_sync()``)."""
        if not torch.is_grad_enabled():
            return
        if self.update_due:
            if self._no_sync is not None:
                self._no_sync.__exit__(None, None, None)
                self._no_sync = None
        elif self._no_sync is None:
            self._no_sync = self.ddp.no_sync()
            self._no_sync.__enter__()

    def detach(self) -> None:
        """Remove the hooks (a later compile replaces this accumulation)."""
        if self._no_sync is not None:
            self._no_sync.__exit__(None, None, None)
            self._no_sync = None
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ------------------------------------------------------------ the running sums as optimizer state
    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def gather_for_backup(self) -> None:
        """Under several processes, before rank 0 saves ``optimizer.state_dict()``: every process's
        running sums go into it (each process summed its own micro-batches). Every process calls it."""
        if not process.is_distributed() or self.accumulated == 0:
            return
        grads = [p.grad for p in self._params()]
        present = [g for g in grads if g is not None]
        flat = torch.cat([g.detach().reshape(-1) for g in present]) if present else torch.zeros(0)
        pieces = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(pieces, flat)
        self._gathered = [_unflatten(piece, grads) for piece in pieces]

    def _save_sums(self, optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
        if self.accumulated:
            if self._gathered is not None:
                state_dict[STATE_KEY] = {"gradients_per_process": self._gathered}
            else:
                state_dict[STATE_KEY] = {"gradients": [p.grad for p in self._params()]}
        return state_dict

    def _load_sums(self, optimizer: torch.optim.Optimizer, state_dict: dict) -> dict:
        saved = state_dict.pop(STATE_KEY, None)
        if saved is None:
            return state_dict  # saved at an update boundary: the next step starts a new sum
        grads = saved.get("gradients")
        if grads is None:
            grads = _own_share(saved["gradients_per_process"])
        for p, g in zip(self._params(), grads):
            p.grad = None if g is None else g.detach().to(device=p.device, dtype=p.dtype, copy=True)
        return state_dict


def _own_share(per_process: list) -> list:
    """This process's running sums from every process' saved ones: its own when as many processes
    resume as saved them; else the mean over them (the same update once DDP averages the sums)."""
    world = dist.get_world_size() if process.is_distributed() else 1
    if len(per_process) == world:
        return per_process[dist.get_rank() if world > 1 else 0]
    mean = []
    for column in zip(*per_process):
        mean.append(None if column[0] is None else torch.stack(list(column)).mean(dim=0))
    return mean


def _unflatten(flat: torch.Tensor, like: list) -> list:
    out, offset = [], 0
    for g in like:
        if g is None:
            out.append(None)
            continue
        out.append(flat[offset : offset + g.numel()].view_as(g).clone())
        offset += g.numel()
    return out
