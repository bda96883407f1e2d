# SPDX-License-Identifier: Apache-2.0
"""Mixed precision, spelled as Keras spells it: ``tc.mixed_precision.set_global_policy("mixed_bfloat16")``.

Owns: the dtype policies (``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``), the global
policy that ``Model.compile`` reads, and ``Precision``: what a policy does to one model's steps.
Not: the steps themselves (``Model.train_step``).

What a mixed policy does, for any wrapped module: the forward pass and the loss run under
``torch.autocast`` in the compute dtype; the weights (the "master weights"), the optimizer
state, the loss value handed to the trackers and the metric states stay float32, as Keras'.

- ``mixed_bfloat16`` works on CUDA and on the CPU (the CPU's mixed precision: it has bfloat16
  kernels). bfloat16 has float32's range, so no loss scaling is needed.
- ``mixed_float16`` on CUDA scales the loss with ``torch.amp.GradScaler``. Keras' skip of a step
  whose gradients overflowed must not read the overflow flag on the host each step, so the
  optimizer is switched to its fused kernel (Adam, AdamW, SGD), which takes the flag
  on the device. Other optimizers keep the scaler's own step, which reads the flag: one host
  sync per step, with a warning saying so. Gradients are unscaled before the optimizer's
  pre-step hooks, so Keras' clipping sees true gradients.
- ``mixed_float16`` on the CPU runs, with a warning: float16 autocast there is slow and gains
  nothing; use ``mixed_bfloat16``. The scaler runs on the CPU, where its reads cost nothing.
- The scaler's state (its scale and growth tracker) travels in the optimizer's ``state_dict``
  under ``"loss_scaler"``, so ``BackupAndRestore`` and ``model.save`` resume with the scale the
  run had (gradients accumulated towards an update are scaled by it). Saving reads the scale on
  the host, once per save.
- Gradient accumulation: ``backward`` adds scaled gradients to ``.grad`` and ``step`` unscales
  the sum once (one overflow check over all micro-batches), divides by N, and updates or skips.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any

import torch

__all__ = ["Policy", "DTypePolicy", "set_global_policy", "global_policy", "Precision"]

# torch optimizers whose fused kernel takes the loss scaler's overflow flag, on CPU and CUDA alike.
_FUSED = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)
_POLICIES = {"float32": None, "mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}


class Policy:
    """A dtype policy, as ``keras.mixed_precision.Policy``.

    Args:
        name: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.

    Example:
        >>> Policy("mixed_bfloat16").compute_dtype
        'bfloat16'
    """

    def __init__(self, name: str):
        if name not in _POLICIES:
            hint = (
                " Full float16/bfloat16 training is not a policy here: cast the module yourself "
                "(module.to(torch.bfloat16))."
                if name in ("float16", "bfloat16")
                else ""
            )
            raise ValueError(
                f"Unknown dtype policy {name!r}. Use one of {sorted(_POLICIES)}.{hint} Received: name={name!r}"
            )
        self.name = name

    @property
    def compute_dtype(self) -> str:
        """The dtype of the forward pass and the loss (Keras' string)."""
        dtype = _POLICIES[self.name]
        return "float32" if dtype is None else str(dtype).replace("torch.", "")

    @property
    def variable_dtype(self) -> str:
        """The dtype of the weights: always float32 (the master weights)."""
        return "float32"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The ``torch.autocast`` dtype, or None for full float32."""
        return _POLICIES[self.name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f'<Policy "{self.name}">'


DTypePolicy = Policy  # Keras 3's name
_NO_AUTOCAST = contextlib.nullcontext()  # stateless, so one instance serves every step
_global = Policy("float32")
_SCALER_HOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> its state_dict hook handles
SCALER_KEY = "loss_scaler"


def set_global_policy(policy: str | Policy | None) -> None:
    """Set the policy that ``Model.compile`` applies from now on (None: back to float32)."""
    global _global
    _global = get(policy)


def global_policy() -> Policy:
    """The policy ``Model.compile`` applies (float32 unless ``set_global_policy`` changed it)."""
    return _global


def get(policy: str | Policy | None) -> Policy:
    """A ``Policy`` from a name, a ``Policy`` or None (float32)."""
    if policy is None:
        return Policy("float32")
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        return Policy(policy)
    raise TypeError(
        "A dtype policy is a name such as 'mixed_bfloat16' or a tc.mixed_precision.Policy. "
        f"Received: policy of type {type(policy).__name__}"
    )


class Precision:
    """What ``policy`` does to one model's steps on ``device``: autocast, and the float16 scaler.

    Args:
        policy: the model's dtype policy.
        device: the model's device.
        optimizer: the model's torch optimizer (switched to its fused kernel for float16).
        scale_loss: scale the loss under float16 (Keras' ``auto_scale_loss``).
    """

    def __init__(
        self, policy: Policy, device: torch.device, optimizer: torch.optim.Optimizer | None, scale_loss: bool = True
    ):
        self.policy = policy
        self.dtype = policy.autocast_dtype
        self.device_type = device.type
        self.scaler = None
        if self.dtype is torch.float16 and scale_loss:
            if device.type == "cpu":
                warnings.warn(
                    "mixed_float16 on the CPU: float16 autocast runs there but is slow and gains "
                    "nothing; 'mixed_bfloat16' is the CPU's mixed precision. "
                    "Received: policy='mixed_float16', device='cpu'",
                    RuntimeWarning,
                    stacklevel=3,
                )
            self.scaler = torch.amp.GradScaler(device.type)
            if optimizer is not None:
                _use_fused_kernel(optimizer, device)
        if optimizer is not None:
            _carry_scaler_state(optimizer, self.scaler)

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` in the compute dtype, or a no-op for float32."""
        if self.dtype is None:
            return _NO_AUTOCAST
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward(); optimizer.step()``, through the loss scaler for float16."""
        self.backward(loss)
        self.step(optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, the loss scaled for float16: the gradients add to what ``.grad`` holds."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def step(self, optimizer: torch.optim.Optimizer, divide_by: int = 1) -> None:
        """One ``optimizer.step()`` on the gradients in ``.grad`` divided by ``divide_by`` (the mean of
        accumulated micro-batches); under float16, unscaled once (with the overflow check over the
        whole sum: an overflow in any micro-batch skips the update), then the scale moves."""
        if self.scaler is None:
            _divide_gradients(optimizer, divide_by)
            optimizer.step()
            return
        self.scaler.unscale_(optimizer)  # before the step hooks, so Keras' clipping sees true gradients
        _divide_gradients(optimizer, divide_by)
        self.scaler.step(optimizer)  # no host read with a fused kernel (found_inf stays on the device)
        self.scaler.update()

    def float32(self, value: Any) -> Any:
        """Floating tensors in a lower precision → float32 (for the metrics, as Keras')."""
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32:
            return value.float()
        return value


def _carry_scaler_state(optimizer: torch.optim.Optimizer, scaler: Any) -> None:
    """``optimizer.state_dict()`` holds ``scaler``'s state (None: what an earlier compile attached goes)."""
    for handle in _SCALER_HOOKS.pop(optimizer, []):
        handle.remove()
    if scaler is None:
        return

    def save(opt: torch.optim.Optimizer, state_dict: dict) -> dict:
        state_dict[SCALER_KEY] = scaler.state_dict()  # host reads of the scale: once per save
        return state_dict

    def load(opt: torch.optim.Optimizer, state_dict: dict) -> dict:
        saved = state_dict.pop(SCALER_KEY, None)
        if saved:
            scaler.load_state_dict(saved)
        return state_dict

    _SCALER_HOOKS[optimizer] = [
        optimizer.register_state_dict_post_hook(save),
        optimizer.register_load_state_dict_pre_hook(load),
    ]


@torch.no_grad()
def _divide_gradients(optimizer: torch.optim.Optimizer, divide_by: int) -> None:
    if divide_by == 1:
        return
    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if grads:  # a division, as Keras' (g + acc) / steps: x * (1 / 3) would round differently
        torch._foreach_div_(grads, divide_by)


def _use_fused_kernel(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Switch ``optimizer`` to its fused kernel, which takes the scaler's overflow flag on the device."""
    if getattr(optimizer, "_step_supports_amp_scaling", False):
        return
    fusable = (
        isinstance(optimizer, _FUSED)
        and not optimizer.defaults.get("differentiable")
        and all(
            p.is_floating_point() and p.device.type == device.type for g in optimizer.param_groups for p in g["params"]
        )
    )
    if not fusable:
        if device.type == "cpu":
            return  # the scaler's host read costs nothing on the CPU
        warnings.warn(
            f"mixed_float16: {type(optimizer).__name__} has no fused kernel, so the loss scaler reads "
            "its overflow flag on the host: one device sync per step. Adam, AdamW and SGD "
            "avoid it, and so does 'mixed_bfloat16'. "
            f"Received: optimizer={type(optimizer).__name__}",
            RuntimeWarning,
            stacklevel=4,
        )
        return
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, False
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            if isinstance(step, torch.Tensor) and step.device != p.device:
                optimizer.state[p]["step"] = step.to(p.device, torch.float32)
    optimizer._step_supports_amp_scaling = True
