# SPDX-License-Identifier: Apache-2.0
"""ProgbarLogger: Keras' progress output on a tqdm bar.

Owns: the `Epoch i/N` header, the bar and its `loss: 0.1234 - accuracy: 0.9650` postfix,
verbose=2's one line per epoch. Batch logs are device tensors; they are read (a host sync)
only when the refresh interval is up, never once per step.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from tqdm.auto import tqdm

from torchcompile.callbacks.callback import Callback
from torchcompile.core import process

REFRESH_SECONDS = 0.2


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


def _format_step_time(seconds: float, steps: int) -> str:
    per_step = seconds / max(steps, 1)
    if per_step >= 1:
        return f"{per_step:.0f}s/step"
    if per_step >= 1e-3:
        return f"{per_step * 1e3:.0f}ms/step"
    return f"{per_step * 1e6:.0f}us/step"


class ProgbarLogger(Callback):
    """Prints progress as Keras does: a bar (verbose=1) or a line per epoch (verbose=2)."""

    def __init__(self) -> None:
        super().__init__()
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False
        self._bar = None
        self._seen = 0
        self._start = 0.0
        self._last_refresh = 0.0

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = (1 if verbose == "auto" else verbose) if process.is_rank_zero() else 0  # rank 0 prints
        self.epochs = params.get("epochs", 1)

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", file=sys.stdout, flush=True)
        self._open()

    def on_train_batch_end(self, batch, logs=None):
        self._advance(logs)

    def on_epoch_end(self, epoch, logs=None):
        self._close(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._open()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._advance(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._close(logs)

    def on_predict_begin(self, logs=None):
        self._open()

    def on_predict_batch_end(self, batch, logs=None):
        self._advance(None)

    def on_predict_end(self, logs=None):
        self._close(None)

    def _open(self) -> None:
        self._seen = 0
        self._start = self._last_refresh = time.monotonic()
        if self.verbose == 1:
            self._bar = tqdm(
                total=self.params.get("steps"),
                file=sys.stdout,
                leave=True,
                dynamic_ncols=True,
                bar_format="{n_fmt}/{total_fmt} {bar:20} {elapsed} {rate_inv_fmt}{desc}",
                unit="step",
                mininterval=REFRESH_SECONDS,
            )

    def _advance(self, logs: Mapping[str, Any] | None) -> None:
        self._seen += 1
        if self._bar is None:
            return
        self._bar.update(1)
        now = time.monotonic()
        if logs and now - self._last_refresh >= REFRESH_SECONDS:
            self._last_refresh = now
            self._bar.set_description_str(" - " + format_logs(logs), refresh=False)

    def _close(self, logs: Mapping[str, Any] | None) -> None:
        summary = format_logs(logs)
        if self._bar is not None:
            self._bar.set_description_str(" - " + summary if summary else "", refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            elapsed = time.monotonic() - self._start
            line = f"{self._seen}/{self._seen} - {elapsed:.0f}s - {_format_step_time(elapsed, self._seen)}"
            print(f"{line} - {summary}" if summary else line, file=sys.stdout, flush=True)
