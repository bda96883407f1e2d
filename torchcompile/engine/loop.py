# SPDX-License-Identifier: Apache-2.0
"""The one loop behind fit, evaluate and predict.

Owns: running the steps of one epoch in a mode ("train", "test", "predict"), the batch
hooks, stopping early, and turning device results into Python numbers once per epoch.
Not: what a step computes (Model.train_step / test_step / predict_step).
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

from torchcompile.engine import distributed

_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


class LazyLogs(Mapping):
    """Batch logs: running metric values as 0-d device tensors, computed on first read.

    Nothing is computed when no callback reads the logs, so the hot path stays free of
    extra kernels and host syncs; reading a value as a Python number is what syncs.
    """

    def __init__(self, metrics: Callable[[], list]):
        self._metrics = metrics
        self._values: dict[str, Any] | None = None

    def _resolve(self) -> dict[str, Any]:
        if self._values is None:
            self._values = {m.name: m.result() for m in self._metrics()}
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        return len(self._resolve())


def run_epoch(model: Any, mode: str, epoch_iterator: Any, callbacks: Any,
              step_fn: Callable[..., Any]) -> list:
    """Run one pass over ``epoch_iterator`` and return what predict steps produced."""
    begin_hook, end_hook = (getattr(callbacks, name) for name in _HOOKS[mode])
    with_hooks = callbacks.wants_batch_hooks(mode)
    outputs = []
    batches = epoch_iterator.enumerate_epoch()
    resume_point = getattr(model, "_resume_point", None) if mode == "train" else None
    if resume_point is not None:
        # BackupAndRestore: records the RNG state before the epoch's batches are drawn, and after a
        # restart restores it and skips the steps the killed run had done (callbacks/backup_and_restore.py).
        batches = resume_point.batches(batches, callbacks)
    for step, batch in batches:
        if with_hooks:
            begin_hook(step, None)
        result = step_fn(model.prepare_batch(batch, mode))
        if mode == "predict":
            outputs.append(result)
            logs = {"outputs": result}
        else:
            logs = LazyLogs(lambda: model.metrics)
        if with_hooks:
            end_hook(step, logs)
        if mode == "train" and model.stop_training and not distributed.is_distributed():
            break  # several processes stop together at the epoch's end (distributed.end_epoch)
    if epoch_iterator.ran_out_of_data and mode == "train":
        model.stop_training = True
    return outputs


def pythonify_logs(results: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Device results → Python floats (vectors → NumPy arrays). One host sync for all scalars."""
    scalars = {k: v for k, v in results.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
    values = torch.stack([v.detach().reshape(()).float() for v in scalars.values()]).tolist() if scalars else []
    python = dict(zip(scalars, values))
    return {k: python[k] if k in python else _to_numpy(v) for k, v in results.items()}


def _to_numpy(value: Any) -> Any:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


@contextmanager
def mode(module: torch.nn.Module, training: bool) -> Iterator[None]:
    """Put ``module`` in train or eval mode (with no_grad when evaluating); restore it after."""
    was_training = module.training
    module.train(training)
    try:
        if training:
            yield
        else:
            with torch.no_grad():
                yield
    finally:
        module.train(was_training)
