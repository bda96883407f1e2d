# SPDX-License-Identifier: Apache-2.0
"""Learning curves from a History: one subplot per metric, train beside its `val_` twin.

Owns: `plot_history` (what `History.plot` calls) and the lazy matplotlib import. Not: the
numbers (callbacks/history.py records them). matplotlib is the optional `plot` extra, so the
core package never imports it.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

__all__ = ["plot_history"]


def plot_history(history: Any, path: str | os.PathLike | None = None, metrics: Sequence[str] | None = None) -> Any:
    """Draw loss and metric curves, train and validation, and save them as a PNG.

    Args:
        history: a `tc.callbacks.History` (what `fit` returns), or its `.history` dict.
        path: where to write the PNG; `None` saves nothing.
        metrics: the base names to draw (`"loss"`, `"accuracy"`, ...); `None` draws every
            key that is not a `val_` twin, in History's order. Each name's `val_` twin is
            drawn on the same subplot when it was recorded.

    Returns:
        The `matplotlib.figure.Figure`, one subplot per metric.

    Example:
        >>> history = model.fit(x, y, epochs=5, validation_split=0.2)  # doctest: +SKIP
        >>> plot_history(history, "history.png")                        # doctest: +SKIP
    """
    plt, ticker = _import_pyplot()
    logs = _logs_of(history)
    names = _names_to_plot(logs, metrics)
    epochs = list(getattr(history, "epoch", None) or [])
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                values = logs[key]
                xs = epochs if len(epochs) == len(values) else range(len(values))
                ax.plot([e + 1 for e in xs], values, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.legend()
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig


def _import_pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError as error:
        raise ImportError(
            "Plotting a History needs matplotlib, the optional `plot` extra. Install it with "
            '`pip install "torchcompile[plot]"` (or `pip install matplotlib`). '
            f"Received: ImportError({error})"
        ) from error
    return plt, ticker


def _logs_of(history: Any) -> dict[str, list]:
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(
            "plot_history takes the History that fit() returns, or its `.history` dict. "
            f"Received: history of type {type(history).__name__}"
        )
    if not any(len(v) for v in logs.values()):
        raise ValueError(
            "There is nothing to plot: the History has no recorded epochs. Call fit() first "
            f"and plot the History it returns. Received: history keys {list(logs)}"
        )
    return logs


def _names_to_plot(logs: dict[str, list], metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        names = [k for k in logs if not (k.startswith("val_") and k[4:] in logs)]
        return names
    if isinstance(metrics, str):
        metrics = [metrics]
    missing = [m for m in metrics if m not in logs and f"val_{m}" not in logs]
    if missing or not metrics:
        raise ValueError(
            f"plot_history can draw only recorded metrics; {missing or 'none were asked for'} "
            f"not in the History. Pick from {list(logs)}. Received: metrics={list(metrics)}"
        )
    return list(metrics)
