# SPDX-License-Identifier: Apache-2.0
"""The one loop behind fit, evaluate and predict.

Owns: running the steps of one epoch in a mode ("train", "test", "predict"), grouping them
by ``steps_per_execution`` (the batch hooks run once per group, as Keras: begin with the
group's first step index, end with its last), stopping early, and turning device results
into Python numbers once per epoch; ``Trainable``, all the engine may use of a model. Not:
what a step computes (Model.train_step / test_step / predict_step), how a group executes
(engine/execution.py) or the run around the epochs (engine/run.py).

Sync points: none per step. ``pythonify_logs`` is the one read per epoch; a callback that
reads its batch logs as numbers pays for that read itself.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol

import torch

from torchcompile.core import process
from torchcompile.core.tree import join_structures


def metrics_results(metrics: list) -> dict[str, Any]:
    """``{name: result}`` of ``metrics`` as device tensors; a metric whose result is a dict adds its
    entries (Keras flattens them)."""
    results: dict[str, Any] = {}
    for metric in metrics:
        value = metric.result()
        if isinstance(value, Mapping):
            results.update(value)
        else:
            results[metric.name] = value
    return results


class LazyLogs(MutableMapping):
    """Logs of running metric values as 0-d device tensors, computed on first read.

    The default steps return these: nothing is computed when no callback reads the logs, so
    the hot path stays free of extra kernels and host syncs; reading a value as a Python number
    is what syncs. A step may add entries (``logs["extra"] = value``), as to a dict.
    """

    def __init__(self, metrics: Callable[[], list]):
        self._metrics = metrics
        self._values: dict[str, Any] | None = None

    def _resolve(self) -> dict[str, Any]:
        if self._values is None:
            results = metrics_results(self._metrics())
            self._values = {k: results[k] for k in sorted(results)}  # Keras sorts its logs
        return self._values

    def copy(self) -> dict[str, Any]:
        """A plain dict of the values (computed now), as ``dict.copy``."""
        return dict(self._resolve())

    def __getitem__(self, key: str) -> Any:
        return self._resolve()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._resolve()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._resolve()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolve())

    def __len__(self) -> int:
        # Without computing anything: `if logs:` in a callback must not resolve the logs.
        return len(self._values) if self._values is not None else len(self._metrics())

    @property
    def is_metrics_result(self) -> bool:
        """Whether these are exactly the metrics' results (no entry added by a step)."""
        return self._values is None or set(self._values) == set(metrics_results(self._metrics()))


class Trainable(Protocol):
    """What the engine may use of a model: nothing else, and nothing private."""

    module: torch.nn.Module
    device: torch.device
    stop_training: bool

    @property
    def metrics(self) -> list: ...

    def train_step(self, data: Any) -> Any: ...

    def test_step(self, data: Any) -> Any: ...

    def predict_step(self, data: Any) -> Any: ...

    def reset_metrics(self) -> None: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def get_metrics_result(self) -> dict[str, Any]: ...


def run_epoch(
    model: Trainable,
    mode: str,
    epoch_iterator: Any,
    callbacks: Any,
    step_fn: Callable[..., Any],
    prepare: Callable[[Any, str], Any] | None = None,
    steps_per_execution: int = 1,
    resume: Any = None,
) -> list:
    """Run one pass over ``epoch_iterator``; return what predict steps produced, or ``[the last
    train/test step's logs]``.

    Args:
        model: reads ``stop_training`` after each group, and ``metrics`` for the batch logs.
        mode: "train", "test" or "predict".
        epoch_iterator: yields ``(step, batch)``.
        callbacks: a ``CallbackList``; its batch hooks are skipped when no callback has one.
        step_fn: one step on one batch; its ``run_group``, if any, runs a whole group (a CUDA graph).
        prepare: ``prepare(batch, mode)`` before the step (checks, device move); None when
            batches come ready.
        steps_per_execution: batches per group; hooks and the stop check run once per group.
        resume: a ``resume.TrainingState`` (training only): records the RNG state before the
            epoch's batches are drawn, and after a restart skips the steps already done.
    """
    begin_hook, end_hook = callbacks.batch_hooks(mode)
    run_group = getattr(step_fn, "run_group", None)
    prepare = prepare or _identity
    outputs = []
    batches = epoch_iterator.enumerate_epoch()
    if resume is not None:
        batches = resume.batches(batches)
    last = None
    if run_group is None:
        # Eager steps, one batch at a time (a group's batches are not drawn ahead of its steps);
        # the hooks and the stop check come once per group of steps_per_execution steps.
        train, predict = mode == "train", mode == "predict"
        in_group = 0
        for step, batch in batches:
            if in_group == 0 and begin_hook is not None:
                begin_hook(step, None)
            last = step_fn(prepare(batch, mode))
            if predict:
                outputs.append(last)
            in_group += 1
            if in_group < steps_per_execution:
                continue
            in_group = 0
            if end_hook is not None:
                end_hook(step, {"outputs": last} if predict else step_logs(model, last))
            if train and model.stop_training and not process.is_distributed():
                break
        else:
            if in_group and end_hook is not None:  # the last, shorter group
                end_hook(step, {"outputs": last} if predict else step_logs(model, last))
        if epoch_iterator.ran_out_of_data and train:
            model.stop_training = True
        return outputs if predict else [last]
    for steps, group in _groups(batches, steps_per_execution):  # captured groups (CUDA graphs)
        if begin_hook is not None:
            begin_hook(steps[0], None)
        results = run_group([prepare(batch, mode) for batch in group])
        if mode == "predict":
            outputs.extend(results)
        else:
            last = results[-1]
        if end_hook is not None:
            end_hook(steps[-1], {"outputs": results[-1]} if mode == "predict" else step_logs(model, last))
        if mode == "train" and model.stop_training and not process.is_distributed():
            break  # several processes stop together at the epoch's end (distributed.end_epoch)
    if epoch_iterator.ran_out_of_data and mode == "train":
        model.stop_training = True
    return outputs if mode == "predict" else [last]


def step_logs(model: Trainable, result: Any) -> Mapping:
    """What a train/test step returned (Keras: the logs callbacks see; nested dicts flattened, keys
    sorted, values left on the device), or the running metric values when it returned no dict (a
    step written for an older contract, or a CUDA graph replay)."""
    if isinstance(result, LazyLogs):
        return result
    return flatten_logs(result) if isinstance(result, Mapping) else LazyLogs(lambda: model.metrics)


def flatten_logs(logs: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merged into one, keys sorted, as Keras' ``pythonify_logs`` (without reading values)."""
    flat: dict[str, Any] = {}
    for key in sorted(logs):
        value = logs[key]
        if isinstance(value, Mapping):
            flat.update(flatten_logs(value))
        else:
            flat[key] = value
    return flat


def _identity(batch: Any, mode: str) -> Any:
    return batch


def _groups(batches: Iterator[tuple[int, Any]], size: int) -> Iterator[tuple[list[int], list]]:
    """``(step, batch)`` pairs → ``([steps], [batches])`` of up to ``size``; the last may be shorter."""
    steps, group = [], []
    for step, batch in batches:
        steps.append(step)
        group.append(batch)
        if len(group) == size:
            yield steps, group
            steps, group = [], []
    if group:
        yield steps, group


def pythonify_logs(results: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Device results → Python floats (vectors → NumPy arrays), keys sorted as Keras' ``pythonify_logs``
    sorts them; nested dicts are merged in. One host sync for all scalars."""
    results = flatten_logs(results)
    scalars = {k: v for k, v in results.items() if isinstance(v, torch.Tensor) and v.numel() == 1}
    values = torch.stack([v.detach().reshape(()).float() for v in scalars.values()]).tolist() if scalars else []
    python = dict(zip(scalars, values))
    return {k: python[k] if k in python else _to_numpy(results[k]) for k in sorted(results)}


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


def concatenate_outputs(outputs: list) -> Any:
    """Per-batch outputs → the same structure of NumPy arrays, batches concatenated."""
    return join_structures(outputs, _concatenate_batches)


def _concatenate_batches(batches: list) -> Any:
    joined = torch.cat([o.detach().reshape(o.shape if o.dim() else (1,)) for o in batches])
    return joined.cpu().numpy() if joined.dtype != torch.bfloat16 else joined.float().cpu().numpy()
