# SPDX-License-Identifier: Apache-2.0
"""CSVLogger: one row of epoch logs per epoch in a CSV file (Keras' columns and values).

Owns: the columns (`epoch`, then the sorted log keys, plus `val_` twins when validation has
not run yet), "NA" for missing values, `append`. Each epoch rewrites the whole file
atomically (saving.atomic_write), so a killed process leaves the previous complete file;
the rows are kept in memory, which is small next to anything else a training run holds.
"""

from __future__ import annotations

import collections.abc
import csv
import io
import os
from typing import Any

import numpy as np

from torchcompile.callbacks.callback import Callback
from torchcompile.core import process
from torchcompile.saving import atomic_write


class CSVLogger(Callback):
    """Stream epoch results to a CSV file.

    Args:
        filename: the CSV file.
        separator: the column separator.
        append: add to an existing file (its header is kept) instead of overwriting it.

    Example:
        >>> csv_logger = CSVLogger("training.log")
        >>> # model.fit(x, y, callbacks=[csv_logger])
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.keys: list[str] | None = None
        self.append_header = True
        self._text = ""

    def on_train_begin(self, logs=None):
        if not process.is_rank_zero():
            return  # several processes: rank 0 writes the file (the logs are the same everywhere)
        self._text = ""
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                self._text = f.read()
        self.append_header = not self._text.strip()
        self.keys = None
        if not self.append:
            atomic_write(self.filename, lambda f: None)  # Keras truncates the file when training starts

    def on_epoch_end(self, epoch, logs=None):
        if not process.is_rank_zero():
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *self.keys], delimiter=self.sep)
        if self.append_header:
            writer.writeheader()
            self.append_header = False
        writer.writerow({"epoch": epoch, **{k: _handle_value(logs.get(k, "NA")) for k in self.keys}})
        self._text += buffer.getvalue()
        data = self._text.encode()
        atomic_write(self.filename, lambda f: f.write(data))


def _handle_value(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value
