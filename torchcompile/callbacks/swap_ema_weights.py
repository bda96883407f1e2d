# SPDX-License-Identifier: Apache-2.0
"""SwapEMAWeights: evaluate, predict and checkpoint with the optimizer's moving average of the weights.

Owns: when the weights and their average trade places (Keras' hooks and flag). Not: keeping the
average (optimizers/step_hooks.py keeps it in ``optimizer.state[p]["ema"]`` with ``use_ema=True``).
"""

from __future__ import annotations

import torch

from torchcompile.callbacks.callback import Callback
from torchcompile.optimizers.step_hooks import hooks_of

__all__ = ["SwapEMAWeights"]


class SwapEMAWeights(Callback):
    """Swap the model's weights and the optimizer's EMA weights around evaluation, as Keras.

    Validation inside ``fit``, ``evaluate`` and ``predict`` run with the moving average
    ("Polyak averaging") of the weights; the training weights come back afterwards. The swap is
    in place (no extra copy of the model is kept). Use it with an optimizer built with
    ``use_ema=True``.

    Args:
        swap_on_epoch: also swap at the end of each epoch and back at the start of the next, so
            the callbacks after this one (``ModelCheckpoint``, say) see the EMA weights. Place it
            after ``EarlyStopping``: when training stops before the last epoch, fit's final copy
            of the average into the weights must know it is the last epoch (as in Keras).

    Example:
        >>> model.compile(optimizer=tc.optimizers.SGD(use_ema=True), loss="mse")
        >>> model.fit(x, y, callbacks=[tc.callbacks.SwapEMAWeights(swap_on_epoch=True),
        ...                            tc.callbacks.ModelCheckpoint("best.pt")])
    """

    def __init__(self, swap_on_epoch: bool = False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap()

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap()
            if epoch == self.params.get("epochs", 0) - 1 or getattr(self.model, "stop_training", False):
                # fit ends by copying the average into the weights (finalize_variable_values);
                # the average now holds the training weights, so give it the EMA back first (Keras).
                self._copy_weights_into_average()

    def on_test_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap()

    def on_test_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap()

    def on_predict_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap()

    def on_predict_end(self, logs=None):
        # Keras tests `not self._ema_weights_in_model` here, which never swaps back; we restore.
        if self._ema_weights_in_model:
            self._swap()

    def on_train_end(self, logs=None):
        self._ema_weights_in_model = False  # fit's finalize step left the EMA in the weights on purpose

    @torch.no_grad()
    def _swap(self) -> None:
        pairs = _ema_pairs(self.model)
        if pairs:
            weights, averages = [p for p, _ in pairs], [e for _, e in pairs]
            held = [w.clone() for w in weights]  # one weight's worth at a time would do; foreach is faster
            torch._foreach_copy_(weights, averages)
            torch._foreach_copy_(averages, held)
        self._ema_weights_in_model = not self._ema_weights_in_model

    @torch.no_grad()
    def _copy_weights_into_average(self) -> None:
        pairs = _ema_pairs(self.model)
        if pairs:
            torch._foreach_copy_([e for _, e in pairs], [p for p, _ in pairs])


def _ema_pairs(model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(weight, average)`` for every weight the optimizer averages; a ValueError without ``use_ema``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not _uses_ema(optimizer):
        raise ValueError(
            "SwapEMAWeights must be used when `use_ema=True` is set on the optimizer: build it as "
            "tc.optimizers.SGD(use_ema=True) (or any tc.optimizers class) and pass it to compile(). "
            f"Received: optimizer={type(optimizer).__name__}"
        )
    # The average lives beside each weight's optimizer state (step_hooks._update_ema); a weight
    # that has not had a step yet has none, and keeps its value.
    return [
        (p, optimizer.state[p]["ema"])
        for group in optimizer.param_groups
        for p in group["params"]
        if "ema" in optimizer.state.get(p, {})
    ]


def _uses_ema(optimizer: torch.optim.Optimizer) -> bool:
    hooks = hooks_of(optimizer)
    return hooks is not None and hooks.ema_momentum is not None
