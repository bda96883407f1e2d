# SPDX-License-Identifier: Apache-2.0
"""CSVLogger: one row of epoch logs per epoch in a CSV file (Keras' columns and values).

Owns: the columns (`epoch`, then the sorted log keys, plus `val_` twins when validation has
not run yet), "NA" for missing values, `append` (onto a file with other columns, the table is
widened rather than given rows that do not match its header). Each epoch rewrites the whole file
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
        append: add to an existing file instead of overwriting it. Its header is kept; when this
            run logs columns the file lacks, they are added at the end of the header and the
            earlier rows get "NA" in them, and this run's rows get "NA" in columns it does not
            log, so the file stays one valid table (Keras writes rows that do not match the
            header). The file's rows are changed only by adding those "NA" cells.

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
        self._fieldnames: list[str] = []

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
            self._fieldnames = ["epoch", *self.keys]
            if not self.append_header:
                self._fieldnames, self._text = _widen(self._text, self._fieldnames, self.sep)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._fieldnames, delimiter=self.sep, restval="NA")
        if self.append_header:
            writer.writeheader()
            self.append_header = False
        writer.writerow({"epoch": epoch, **{k: _handle_value(logs.get(k, "NA")) for k in self.keys}})
        self._text += buffer.getvalue()
        data = self._text.encode()
        atomic_write(self.filename, lambda f: f.write(data))


def _widen(text: str, columns: list[str], sep: str) -> tuple[list[str], str]:
    """The header for appending ``columns`` to the table in ``text``, and ``text`` fitted to it.

    The existing header comes first; columns it lacks are added at its end, and the existing rows
    get "NA" in them (rewritten only then), so every row matches the header.
    """
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    header = rows[0]
    added = [c for c in columns if c not in header]
    if not text.endswith("\n"):
        text += "\n"
    if not added:
        return header, text
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep)
    writer.writerow(header + added)
    writer.writerows(row + ["NA"] * len(added) if row else row for row in rows[1:])
    return header + added, buffer.getvalue()


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
