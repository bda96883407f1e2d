# SPDX-License-Identifier: Apache-2.0
"""MonitorCallback: the "is this an improvement?" logic EarlyStopping, ModelCheckpoint and
ReduceLROnPlateau share (Keras' monitor_callback.py).

Owns: `mode` ("auto" / "min" / "max") and how "auto" picks a direction, `min_delta`,
`baseline`, and reading the monitored value from logs. Not: what to do on improvement.

A NaN is never an improvement, and a NaN reference (a NaN `best` or `baseline`) counts as no
reference: a NaN first `val_loss` cannot become "best" forever. A deliberate difference from
Keras 3, whose first value becomes `best` whatever it is (Keras 2 started from +-inf).
"""

from __future__ import annotations

import math
import operator
import re
import warnings
from typing import Any, Mapping

from torchcompile.callbacks.callback import Callback

# Keras 3 asks each metric for its direction; metrics without one fall back to these names.
_HIGHER_IS_BETTER = re.compile(
    r"acc|auc|precision|recall|f1|fbeta|f_beta|iou|r2|cosine_similarity|"
    r"true_positives|true_negatives"
)
_LOWER_IS_BETTER = re.compile(
    r"loss|error|mse|mae|mape|msle|hinge|crossentropy|divergence|kld|poisson|"
    r"logcosh|log_cosh|false_positives|false_negatives"
)


def to_float(value: Any) -> float | None:
    """A logged scalar as a Python float (reads a device tensor: a host sync); None if not a scalar."""
    if value is None:
        return None
    if hasattr(value, "numel"):
        return float(value.detach().reshape(())) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class MonitorCallback(Callback):
    """Base class for callbacks that watch one logged quantity.

    Args:
        monitor: the log key to watch, e.g. "val_loss".
        mode: "min", "max", or "auto": "loss" → min; a metric of the model with a
            `higher_is_better` attribute → its direction; else the name decides ("acc",
            "auc", "precision", "f1"... → max; "mse", "error", "hinge"... → min); else a
            ValueError asks for an explicit mode (Keras 3).
        baseline: the initial "best" value, or None to take the first value seen.
        min_delta: the least change that counts as an improvement.
    """

    def __init__(
        self, monitor: str = "val_loss", mode: str = "auto", baseline: float | None = None, min_delta: float = 0.0
    ):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        higher = {"max": True, "min": False}.get(self.mode)
        if higher is None:
            higher = self._infer_direction()
        self.monitor_op = operator.gt if higher else operator.lt
        if not higher:
            self.min_delta = -abs(self.min_delta)

    def _infer_direction(self) -> bool:
        name = self.monitor.removeprefix("val_")
        if name == "loss" or name.endswith("_loss"):
            return False
        for metric in _leaves(getattr(self.model, "metrics", None) or []):
            if getattr(metric, "name", None) == name and isinstance(getattr(metric, "higher_is_better", None), bool):
                return metric.higher_is_better
        if _HIGHER_IS_BETTER.search(name):
            return True
        if _LOWER_IS_BETTER.search(name):
            return False
        raise ValueError(
            f"{type(self).__name__} callback received monitor={self.monitor}, but torchcompile isn't "
            "able to automatically determine whether that metric should be maximized or minimized. "
            "Pass `mode='max'` in order to monitor based on the highest metric value, or pass "
            f"`mode='min'` in order to use the lowest value. Received: monitor={self.monitor!r}"
        )

    def _is_improvement(self, monitor_value: float, reference_value: float | None) -> bool:
        """Whether ``monitor_value`` beats ``reference_value`` by ``min_delta`` in the monitored direction.

        A NaN value is never an improvement; a NaN or missing reference is beaten by any other value.
        """
        if math.isnan(monitor_value):
            return False
        if reference_value is None or math.isnan(reference_value):
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))

    def get_monitor_value(self, logs: Mapping[str, Any] | None, what: str) -> float | None:
        """The monitored value as a float, or None with Keras' warning listing the available keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{what} conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(list(logs.keys()))}",
                stacklevel=3,
            )
        return to_float(value)

    def state_dict(self) -> dict[str, Any]:
        """What BackupAndRestore keeps so a restarted run continues exactly (plain data)."""
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


def _leaves(metrics: list) -> list:
    """The metrics, a container's (the model's ``CompileMetrics``) expanded into those it holds, as Keras does."""
    return [leaf for m in metrics for leaf in (m.metrics if isinstance(getattr(m, "metrics", None), list) else [m])]
