# SPDX-License-Identifier: Apache-2.0
"""The model's weights and files: Keras' method names over saving.py and summary.py.

Owns: ``save_weights`` / ``load_weights`` / ``save`` / ``get_weights`` / ``set_weights`` /
``summary`` as ``tc.Model`` methods (a base class of it). Not: the file formats and atomic
writes (saving.py), the summary table (summary.py).
"""

from __future__ import annotations

from typing import Any

from torchcompile import saving
from torchcompile import summary as summary_module


class ModelIO:
    """Weights and files of a model with ``module``, ``device`` and ``optimizer`` attributes."""

    def save_weights(self, filepath: str, overwrite: bool = True) -> None:
        """The module's state_dict as a plain torch file (``torch.load(weights_only=True)`` reads it)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str) -> None:
        """Load a state_dict file (ours or plain torch's); all or nothing, mismatching keys named."""
        saving.load_weights(self, filepath)

    def save(self, filepath: str, overwrite: bool = True) -> None:
        """Weights, optimizer state, compile configuration and epoch; ``tc.load_model`` resumes from it."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def get_weights(self) -> list:
        """Every state_dict entry (parameters and buffers), in order, as NumPy arrays (Keras)."""
        return saving.get_weights(self.module)

    def set_weights(self, weights: list) -> None:
        """Set every state_dict entry from ``get_weights()``-shaped arrays; count and shapes checked."""
        saving.set_weights(self.module, weights)

    def summary(
        self, input_shape: Any = None, line_length: int | None = None, print_fn: Any = None, expand_nested: bool = False
    ) -> None:
        """Keras' table: submodules, output shapes (from the first batch, or ``input_shape``), parameters."""
        summary_module.print_summary(
            self, input_shape=input_shape, line_length=line_length, print_fn=print_fn, expand_nested=expand_nested
        )
