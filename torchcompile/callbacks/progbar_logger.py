# SPDX-License-Identifier: Apache-2.0
"""ProgbarLogger: Keras' progress output, shaped for where stdout goes.

Owns: the `Epoch i/N` header; a live bar on a terminal or in a notebook (tqdm's widget when
ipywidgets is installed, its text bar otherwise); plain lines, at most one every `line_interval`
seconds, when stdout is a file or a pipe; Keras' end-of-epoch line; Keras' number, step-time
(`1ms/step`, `250us/step`) and ETA formats. Batch logs are device tensors: they are read (a host
sync) only when the bar refreshes or a line is printed, never once per step.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Mapping

from torchcompile.callbacks.callback import Callback
from torchcompile.core import process

__all__ = ["ProgbarLogger", "format_logs", "format_step_time", "format_eta"]

REFRESH_SECONDS = 0.2  # the live bar's refresh interval
LINE_INTERVAL_SECONDS = 30.0  # default gap between plain lines in a file


def format_logs(logs: Mapping[str, Any] | None) -> str:
    """Keras' `name: value` list, `.4f` above 1e-3 and `.4e` below; reads tensors (a host sync)."""
    parts = []
    for name, value in (logs or {}).items():
        number = _to_number(value)
        if number is None:
            continue
        parts.append(f"{name}: {number:.4f}" if abs(number) > 1e-3 else f"{name}: {number:.4e}")
    return " - ".join(parts)


def _to_number(value: Any) -> float | None:
    try:
        if hasattr(value, "numel") and value.numel() != 1:
            return None
        return float(value)
    except (TypeError, ValueError):
        return None


def format_step_time(seconds_per_step: float, unit: str = "step") -> str:
    """Keras' `Progbar._format_time`: `2s/step`, `25ms/step`, `250us/step` (and `0s/step` for 0)."""
    if seconds_per_step >= 1 or seconds_per_step == 0:
        return f"{seconds_per_step:.0f}s/{unit}"
    if seconds_per_step >= 1e-3:
        return f"{seconds_per_step * 1e3:.0f}ms/{unit}"
    return f"{seconds_per_step * 1e6:.0f}us/{unit}"


def format_eta(seconds: float) -> str:
    """Keras' ETA: `h:mm:ss` above an hour, `m:ss` above a minute, else `12s`."""
    if seconds > 3600:
        return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)
    if seconds > 60:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%ds" % seconds


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (tqdm's own test, so both agree on where output goes)."""
    if "ipykernel.zmqshell" in sys.modules:
        if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
            return False  # qtconsole / Spyder: a console
        return True
    return "IPython.utils._process_emscripten" in sys.modules  # JupyterLite


def live_display() -> bool:
    """Whether stdout redraws a line in place: a terminal, a notebook, or PyCharm's console (as Keras)."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        tty = False
    return tty or in_notebook() or "PYCHARM_HOSTED" in os.environ


def _widget_bar_class() -> Any:
    """tqdm's notebook widget when ipywidgets imports, else None (and no 'IProgress not found' warning)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:
        return None
    return notebook_tqdm


class ProgbarLogger(Callback):
    """Prints progress as Keras does: a bar (verbose=1, "auto") or one line per epoch (verbose=2).

    The bar is live only where a line can be redrawn: on a terminal or in a notebook. When
    stdout is a file or a pipe (nohup, SLURM, CI, `| tee`), verbose=1 and "auto" print a plain
    line at most every `line_interval` seconds (`30/100 - ETA: 1:05 - 25ms/step - loss: 0.1234`)
    and Keras' end-of-epoch line (`100/100 - 3s - 25ms/step - loss: 0.1234`), with no carriage
    returns. Logs are read (a device sync) only when the bar refreshes or a line is printed.

    Args:
        line_interval: seconds between plain progress lines when stdout is not a terminal.
            `fit` adds a ProgbarLogger with the default; pass your own in `callbacks` to change it.
    """

    def __init__(self, line_interval: float = LINE_INTERVAL_SECONDS) -> None:
        super().__init__()
        if not line_interval >= 0:
            raise ValueError(
                f"`line_interval` must be a number of seconds >= 0. Received: line_interval={line_interval}"
            )
        self.line_interval = float(line_interval)
        self.verbose = 1
        self.epochs = 1
        self.target: int | None = None
        self._called_in_fit = False
        self._bar = None
        self._lines = False
        self._seen = self._first_seen = 0
        self._start = self._after_first_step = self._last_refresh = 0.0

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = (1 if verbose == "auto" else verbose) if process.is_rank_zero() else 0  # rank 0 prints
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs=None):
        self._called_in_fit = True  # inside fit, validation is silent (Keras)

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=sys.stdout, flush=True)
        self._open()

    def on_train_batch_end(self, batch, logs=None):
        self._advance(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._close(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._open()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._advance(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._close(logs)

    def on_predict_begin(self, logs=None):
        self._open()

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(batch, None)  # predict's batch logs hold outputs, not metrics

    def on_predict_end(self, logs=None):
        self._close(None)

    def _open(self) -> None:
        self._seen = self._first_seen = 0
        self._start = self._last_refresh = time.monotonic()
        self._after_first_step = 0.0
        self._bar, self._lines = None, False
        if self.verbose != 1:
            return
        if not live_display():
            self._lines = True
            return
        bar_class = _widget_bar_class() if in_notebook() else None
        if bar_class is None:
            from tqdm.std import tqdm as bar_class  # the text bar; tqdm.auto would warn without ipywidgets
        self._bar = bar_class(
            total=self.target,
            file=sys.stdout,
            leave=True,
            dynamic_ncols=True,
            bar_format="{n_fmt}/{total_fmt} {bar:20}{desc}",
            unit="step",
            mininterval=REFRESH_SECONDS,
        )

    def _advance(self, batch: int, logs: Mapping[str, Any] | None) -> None:
        seen = batch + 1  # the hook runs once per steps_per_execution group, with its last index
        now = time.monotonic()
        if not self._first_seen:
            self._first_seen, self._after_first_step = seen, now
        self._seen = seen
        if self._bar is not None:
            if now - self._last_refresh >= REFRESH_SECONDS:  # the bar moves on the timer, not on every step
                self._last_refresh = now
                self._bar.set_description_str(self._progress(now, logs, live=True), refresh=False)
                self._bar.update(seen - self._bar.n)
        elif self._lines and now - self._last_refresh >= self.line_interval:
            self._last_refresh = now
            print(self._progress(now, logs, live=False), file=sys.stdout, flush=True)

    def _progress(self, now: float, logs: Mapping[str, Any] | None, live: bool) -> str:
        """`ETA 25ms/step - logs` after the bar, or `30/100 - ETA: 1:05 - 25ms/step - logs` as a line."""
        per_step = self._seconds_per_step(now)
        eta = format_eta(per_step * (self.target - self._seen)) if self.target else f"{now - self._start:.0f}s"
        summary = format_logs(logs)  # reads the logs: a host sync, only here
        if live:
            return f" {eta} {format_step_time(per_step)}" + (f" - {summary}" if summary else "")
        parts = [self._count(self._seen), f"ETA: {eta}" if self.target else eta, format_step_time(per_step)]
        return " - ".join(parts + ([summary] if summary else []))

    def _seconds_per_step(self, now: float) -> float:
        """Keras' estimate: the first step (compilation, warm-up) is left out once there are more."""
        if self._seen <= 0:
            return 0.0
        if self._seen > self._first_seen > 0:
            return (now - self._after_first_step) / (self._seen - self._first_seen)
        return (now - self._start) / self._seen

    def _count(self, current: int) -> str:
        target = self.target or self._seen
        digits = int(math.log10(target)) + 1 if target > 0 else 1
        return f"{current:{digits}d}/{target}"

    def _close(self, logs: Mapping[str, Any] | None) -> None:
        now = time.monotonic()
        if self.target is None:
            self.target = self._seen  # later epochs know their length (Keras)
        per_step = format_step_time(self._seconds_per_step(now))
        summary = format_logs(logs)  # host sync, once per epoch
        elapsed = f"{now - self._start:.0f}s"
        if self._bar is not None:
            if self._bar.total is None:
                self._bar.total = self._seen
            self._bar.n = self._seen
            self._bar.set_description_str(f" {elapsed} {per_step}" + (f" - {summary}" if summary else ""), False)
            self._bar.close()
            self._bar = None
        elif self._lines or self.verbose == 2:
            line = f"{self._count(self._seen)} - {elapsed} - {per_step}"
            print(f"{line} - {summary}" if summary else line, file=sys.stdout, flush=True)
        self._lines = False
