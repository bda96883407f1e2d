# SPDX-License-Identifier: Apache-2.0
"""The default training and test steps, specialised for the common case (issue 19).

Owns: ``FastStep``, which runs what ``Model.train_step`` runs (forward, compiled loss, loss
tracker, backward and optimizer step, compiled metrics, lazy logs), or ``Model.test_step`` (the
same without the update), in one function, without the layers the general step goes through
(batch unpacking, the precision context, the output structure, the per-output bookkeeping). It
is used only where it gives the same results: the model's step methods are its own, one loss on
one output, float32, no gradient accumulation, no closure-taking optimizer, and an ``(x, y)``
batch of tensors (``x`` may be a dict of them). Any other batch, and every batch that must run
the first-batch checks, goes to the general step.
Not: what a step computes (``Model.train_step``/``test_step`` define it; this must agree with them).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from torchcompile.engine import module_inputs
from torchcompile.engine.loop import LazyLogs

#: The model's methods the default steps run: a model overriding one keeps the general step.
STEP_METHODS = ("train_step", "test_step", "compute_loss", "compute_metrics", "forward")
_SHARED = {"compute_loss", "compute_metrics", "forward"}

_Tensor = torch.Tensor


def fast_step(model: Any, compiled: Any, step: Callable[[Any], Any], mode: str, overridden: Any) -> Callable:
    """``step`` (the model's own ``train_step`` or ``test_step``) or, where the model and its compile
    allow it, a ``FastStep`` that falls back to ``step`` for any batch it does not take.

    Args:
        mode: "train" or "test" (any other mode gets ``step``).
        overridden: which of ``STEP_METHODS`` the model overrides (None: not known).
    """
    if mode not in ("train", "test") or overridden is None or ({f"{mode}_step"} | _SHARED) & set(overridden):
        return step
    if compiled.loss is None or compiled.precision.enabled:
        return step
    training = mode == "train"
    if training and (
        compiled.optimizer is None
        or not compiled.trainable
        or compiled.needs_closure
        or compiled.accumulation is not None
    ):
        return step
    return FastStep(model, compiled, step, training)


class FastStep:
    """``Model.train_step`` (``training``) or ``test_step`` on an ``(x, y)`` batch of tensors, once
    the first batch built the loss and metrics; every other batch runs ``general`` (the model's step)."""

    def __init__(self, model: Any, compiled: Any, general: Callable[[Any], Any], training: bool = True):
        self.model, self.compiled, self.general, self.training = model, compiled, general, training
        self.module = model.module
        # Model.forward's rule: a subclass that is its own network computes through call(); Keras'
        # `training` goes to a forward that takes it, else the module is put in the step's mode.
        self.method = "call" if model.module is model else "forward"
        self.training_argument = module_inputs.takes_argument(model.module, "training", self.method)
        # Dict inputs go straight in (as keywords or one dict, by module_inputs' rule) where
        # module_inputs.forward would pass them so too: a forward without `training` or `labels`.
        self.direct_keywords = (
            self.method == "forward"
            and not self.training_argument
            and not module_inputs.takes_argument(model.module, "labels")
        )
        self.optimizer = compiled.optimizer
        self.tracker = compiled.loss_tracker
        self.logs = lambda: model.metrics
        self.loss: Any = None  # the one output's loss and weight, once the general step built them
        self.weight = 1.0
        self.metrics: list = []

    def _ready(self) -> bool:
        """Whether the compiled loss and metrics are built for one output (after the first batch)."""
        loss, metrics = self.compiled.loss, self.compiled.metrics
        if not (loss.built and metrics.built) or loss.checks_pending:
            return False
        if loss.names is not None or loss.select is not None or loss.entries[0][0] is None:
            return False
        if metrics.names is not None or metrics.select is not None:
            return False
        self.loss, self.weight = loss.entries[0]
        self.metrics = [metric for _, metric, _ in metrics.entries]
        return True

    def __call__(self, data: Any) -> Any:
        if type(data) is not tuple or len(data) != 2 or self.compiled.loss.checks_pending:
            return self.general(data)
        x, y = data
        if (type(x) is not _Tensor and type(x) is not dict) or type(y) is not _Tensor:
            return self.general(data)
        if self.loss is None and not self._ready():
            return self.general(data)
        module = self.module
        ddp = self.compiled.ddp if self.method == "forward" and torch.is_grad_enabled() else None
        if type(x) is dict:
            y_pred = self._forward_dict(x, y, ddp)
        else:
            target = module.call if self.method == "call" else (ddp or module)
            training = self.training
            try:
                if self.training_argument:
                    y_pred = target(x, training=training)
                else:
                    if module.training != training:
                        module.train(training)
                    y_pred = target(x)
            except RuntimeError as error:
                module_inputs.raise_with_hint(error)
        compiled = self.compiled
        if type(y_pred) is not _Tensor:  # an output structure: the compiled loss and metrics handle it
            loss = compiled.loss(y, y_pred, None)
            compiled.track_loss(loss, x)
            if self.training:
                compiled.backward_and_step(loss)
            compiled.update_metrics(y, y_pred, None)
            return LazyLogs(self.logs)
        loss = self.loss(y, y_pred, sample_weight=None)
        if self.weight != 1.0:
            loss = self.weight * loss
        # Keras weighs the batch loss by x's first dimension; y's is the same (the adapters check it).
        self.tracker.update_state(loss.detach(), sample_weight=y.shape[0])
        if self.training:
            optimizer = self.optimizer
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        detached = y_pred.detach()
        for metric in self.metrics:
            metric.update_state(y, detached, sample_weight=None)
        return LazyLogs(self.logs)

    def _forward_dict(self, x: dict, y: torch.Tensor, ddp: Any) -> Any:
        """The module on dict inputs, as ``Model.forward`` passes them (keywords, one dict, or with
        Hugging Face ``labels``)."""
        module = self.module
        if not self.direct_keywords:
            inputs = (module_inputs.with_labels(module, x, y),)
            return module_inputs.forward(module, inputs, {}, self.training, through=ddp, method=self.method)
        if module.training != self.training:
            module.train(self.training)
        target = ddp or module
        try:
            return target(**x) if module_inputs.takes_keywords(module, x) else target(x)
        except RuntimeError as error:
            module_inputs.raise_with_hint(error)
