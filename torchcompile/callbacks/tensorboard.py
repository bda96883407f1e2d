# SPDX-License-Identifier: Apache-2.0
"""TensorBoard: Keras' TensorBoard callback, written with ``torch.utils.tensorboard``.

Owns: Keras' layout (``log_dir/train``, ``log_dir/validation``) and tags (``epoch_loss``,
``epoch_learning_rate``, ``batch_loss``, ``evaluation_loss_vs_iterations``, ``<weight>/histogram``),
the graph (``torch.jit.trace`` on the first batch the module sees), and ``profile_batch`` through
``torch.profiler``. Not: the event-file format (the ``tensorboard`` package writes it).

Sync points: epoch logs are Python numbers already. Batch logs are 0-d device tensors, read only
on the steps that ``update_freq`` logs (one host sync each); with ``update_freq="epoch"`` nothing
is read per step. Histograms copy each weight to the host every ``histogram_freq`` epochs.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from typing import Any

import torch

from torchcompile.callbacks.callback import Callback
from torchcompile.core import process

__all__ = ["TensorBoard"]


def _summary_writer_class() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "tc.callbacks.TensorBoard writes with torch.utils.tensorboard, which needs the `tensorboard` "
            "package. Install it with `pip install torchcompile[tensorboard]` (or `pip install tensorboard`). "
            f"Received: ImportError({error})"
        ) from error
    return SummaryWriter


class TensorBoard(Callback):
    """Write logs for TensorBoard, as Keras' ``TensorBoard`` callback (no TensorFlow needed).

    Scalars go to ``log_dir/train`` and ``log_dir/validation`` under Keras' tags: ``epoch_<name>``
    at step ``epoch`` (``val_`` dropped in the validation run), ``epoch_learning_rate`` (the
    optimizer's ``param_groups[0]["lr"]``), ``batch_<name>`` at the global batch number with
    ``update_freq``, and ``evaluation_<name>_vs_iterations`` after each evaluation. Only rank 0
    writes under ``torchrun``. View with ``tensorboard --logdir <log_dir>``.

    Args:
        log_dir: the folder to write to; not shared with other callbacks.
        histogram_freq: every this many epochs, write a histogram of each weight
            (``<name>/histogram``, the ``state_dict`` name with ``/`` for ``.``); 0 for none.
        write_graph: write the module's graph, traced with ``torch.jit.trace`` on the first batch
            fit feeds it (written after that batch). A module that cannot be traced (data-dependent
            control flow, keyword-only inputs) is skipped with a warning.
        write_images: with ``histogram_freq``, also write 1-D to 3-D weights as images
            (``<name>/image``, scaled to [0, 1]), as Keras lays them out.
        write_steps_per_second: also log ``epoch_steps_per_second`` (and ``batch_steps_per_second``
            with ``update_freq``). On a GPU these are host-side rates: steps are not synchronised.
        update_freq: ``"epoch"``, ``"batch"`` (every batch) or an integer N (every N batches). Batch
            values are read from the device on those batches only: one host sync per logged batch.
        profile_batch: the global batch (counted from 1) to profile, or a pair ``(start, stop)`` of
            batches, with ``torch.profiler``; 0 for none. The trace (``*.pt.trace.json``) goes to
            ``log_dir/train``, where the PyTorch profiler plugin (``pip install torch-tb-profiler``)
            shows it in TensorBoard.
        embeddings_freq, embeddings_metadata: Keras' embedding projector; not written here (a
            warning says so when ``embeddings_freq`` is set).

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[tc.callbacks.TensorBoard("logs", histogram_freq=1)])
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_graph: bool = True,
        write_images: bool = False,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        profile_batch: int | tuple[int, int] | str = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ):
        super().__init__()
        self._writer_class = _summary_writer_class()
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = _check_update_freq(update_freq)
        self._start_batch, self._stop_batch = _profile_range(profile_batch)
        if embeddings_freq:
            warnings.warn(
                "tc.callbacks.TensorBoard does not write Keras' embedding projector; embeddings_freq is "
                f"ignored. Received: embeddings_freq={embeddings_freq}",
                stacklevel=2,
            )
        self._writers: dict[str, Any] = {}
        self._global_train_batch = 0
        self._epoch_steps = 0
        self._epoch_start = self._batch_start = 0.0
        self._in_fit = False
        self._graph: _FirstInput | None = None
        self._profiler: Any = None

    # Writers: created on first use (no empty event files), on rank 0 only.

    def _writer(self, run: str) -> Any:
        if not process.is_rank_zero():
            return None
        if run not in self._writers:
            self._writers[run] = self._writer_class(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # Hooks.

    def on_train_begin(self, logs=None):
        self._in_fit = True
        self._global_train_batch = 0
        if self.write_graph and process.is_rank_zero():
            self._graph = _FirstInput(_module_of(self.model))

    def on_train_end(self, logs=None):
        self._stop_profiler()
        if self._graph is not None:
            self._graph.release()
            self._graph = None
        self._close_writers()
        self._in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_steps = 0
        self._epoch_start = time.monotonic()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start = time.monotonic()
        if self._global_train_batch == self._start_batch:
            self._start_profiler()

    def on_train_batch_end(self, batch, logs=None):
        self._epoch_steps = batch + 1
        if self._graph is not None and self._graph.ready:
            self._write_graph()
        step = self._global_train_batch
        if self.update_freq != "epoch" and step % self.update_freq == 0:
            values = dict((logs or {}).items())  # computes the running values; each read below is a sync
            if self.write_steps_per_second:
                values["steps_per_second"] = 1.0 / max(time.monotonic() - self._batch_start, 1e-9)
            self._scalars("train", "batch_", values, step)
        if self._profiler is not None and step >= self._stop_batch:
            self._stop_profiler()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            train["learning_rate"] = float(optimizer.param_groups[0]["lr"])  # the next step's rate (Keras)
        if self.write_steps_per_second:
            train["steps_per_second"] = self._epoch_steps / max(time.monotonic() - self._epoch_start, 1e-9)
        self._scalars("train", "epoch_", train, epoch)
        self._scalars("validation", "epoch_", {k[4:]: v for k, v in logs.items() if k.startswith("val_")}, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)
        for writer in self._writers.values():
            writer.flush()  # TensorBoard shows the epoch now, not at the writer's next timed flush

    def on_test_end(self, logs=None):
        step = self._iterations()
        self._scalars("validation", "evaluation_", {f"{k}_vs_iterations": v for k, v in (logs or {}).items()}, step)
        if not self._in_fit:  # evaluate(): nothing closes the writers later
            self._close_writers()

    # Writing.

    def _scalars(self, run: str, prefix: str, values: dict, step: int) -> None:
        writer = self._writer(run) if values else None
        if writer is None:
            return
        for name, value in values.items():
            number = _to_float(value)  # a host sync for a device tensor
            if number is not None:
                writer.add_scalar(f"{prefix}{name}", number, step)

    def _iterations(self) -> int:
        """Keras' ``optimizer.iterations``; the batches seen in this fit for a plain torch optimizer."""
        optimizer = getattr(self.model, "optimizer", None)
        groups = getattr(optimizer, "param_groups", None)
        if groups and "iterations" in groups[0]:
            return int(groups[0]["iterations"])
        return self._global_train_batch

    @torch.no_grad()
    def _write_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        if writer is None:
            return
        for name, weight in _module_of(self.model).state_dict().items():
            if not torch.is_floating_point(weight) or weight.numel() == 0:
                continue  # counters such as BatchNorm's num_batches_tracked
            tag = name.replace(".", "/")
            values = weight.detach().float().cpu()  # host copy, every histogram_freq epochs
            writer.add_histogram(f"{tag}/histogram", values, epoch)
            image = _weight_image(values) if self.write_images else None
            if image is not None:
                writer.add_images(f"{tag}/image", image, epoch, dataformats="NHWC")

    def _write_graph(self) -> None:
        graph, self._graph = self._graph, None
        module, args, kwargs = graph.module, graph.args, graph.kwargs
        graph.release()
        writer = self._writer("train")
        if writer is None:
            return
        if kwargs:
            _skip_graph(module, "its forward receives keyword arguments, and add_graph passes positional ones only")
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace: still TensorBoard's graph
                with torch.no_grad():
                    writer.add_graph(module, args, use_strict_trace=False)
        except Exception as error:  # noqa: BLE001 - any tracing failure means: no graph, training goes on
            _skip_graph(module, f"torch.jit.trace failed: {type(error).__name__}: {error}")

    # Profiling (torch.profiler), from the start batch's begin to the stop batch's end.

    def _start_profiler(self) -> None:
        if self._profiler is not None or not process.is_rank_zero():
            return
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        worker = f"{socket.gethostname()}_{os.getpid()}"
        handler = torch.profiler.tensorboard_trace_handler(os.path.join(self.log_dir, "train"), worker_name=worker)
        try:
            self._profiler = torch.profiler.profile(activities=activities, on_trace_ready=handler)
            self._profiler.start()
        except Exception as error:  # noqa: BLE001 - as Keras: a profiler failure does not stop training
            self._profiler = None
            warnings.warn(f"TensorBoard: could not start torch.profiler ({error}); no trace is written.")

    def _stop_profiler(self) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is None:
            return
        try:
            profiler.stop()  # calls the trace handler, which writes the trace file
        except Exception as error:  # noqa: BLE001
            warnings.warn(f"TensorBoard: torch.profiler failed to write its trace ({error}).")


class _FirstInput:
    """A one-shot forward pre-hook that keeps the inputs of the next forward (for tracing the graph).

    It keeps references only (no copy) and removes itself after one call.
    """

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.args: tuple | None = None
        self.kwargs: dict = {}
        self._handle = module.register_forward_pre_hook(self._keep, with_kwargs=True)

    @property
    def ready(self) -> bool:
        return self.args is not None

    def _keep(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self.args, self.kwargs = args, dict(kwargs)
        self.release()

    def release(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _module_of(model: Any) -> torch.nn.Module:
    return getattr(model, "module", model)


def _skip_graph(module: torch.nn.Module, why: str) -> None:
    warnings.warn(
        f"TensorBoard: the graph of {type(module).__name__} is not written: {why}. Scalars and histograms are "
        "written as usual; pass write_graph=False to silence this.",
        stacklevel=3,
    )


def _to_float(value: Any) -> float | None:
    if hasattr(value, "numel"):
        return float(value.detach().reshape(())) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _weight_image(weight: torch.Tensor) -> torch.Tensor | None:
    """Keras' ``_log_weight_as_image`` layout (NHWC), scaled to [0, 1]; None for shapes it skips."""
    w = weight.squeeze()
    if w.dim() == 1:  # a bias
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.dim() == 2:  # a dense kernel, wide side across
        w = w.T if w.shape[0] > w.shape[1] else w
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.dim() == 3:  # a conv1d kernel, torch's channels-first: one image per output channel
        w = w.reshape(w.shape[0], w.shape[1], w.shape[2], 1)
    else:
        return None
    low, high = w.min(), w.max()
    return (w - low) / (high - low) if high > low else torch.zeros_like(w)


def _check_update_freq(update_freq: Any) -> str | int:
    if update_freq == "batch":
        return 1
    if update_freq == "epoch":
        return update_freq
    if isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0:
        return update_freq
    raise ValueError(f"`update_freq` must be 'epoch', 'batch' or a positive integer. Received: {update_freq=}")


def _profile_range(profile_batch: Any) -> tuple[int, int]:
    """Keras' ``profile_batch``: ``n``, ``(start, stop)`` or ``"start,stop"``; (0, 0) turns profiling off."""
    value = profile_batch
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",")]
        except ValueError:
            value = None
        value = value[0] if value is not None and len(value) == 1 else value
    if isinstance(value, int) and not isinstance(value, bool):
        start, stop = value, value
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        start, stop = value
    else:
        start, stop = -1, -1
    if start < 0 or stop < start:
        raise ValueError(
            "profile_batch must be a non-negative integer or a 2-tuple of positive integers (a range of batches "
            f"to profile). Received: profile_batch={profile_batch!r}"
        )
    return start, stop
