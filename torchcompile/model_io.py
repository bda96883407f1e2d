# SPDX-License-Identifier: Apache-2.0
"""The model's weights, layers, name and files: Keras' names over torch's, saving.py and summary.py.

Owns, as ``tc.Model`` methods (a base class of it): ``trainable_weights`` /
``non_trainable_weights`` / ``weights`` / ``count_params`` / ``layers`` / ``get_layer`` / ``name``,
``save_weights`` / ``load_weights`` / ``save`` / ``get_weights`` / ``set_weights`` / ``summary`` /
``export``. Not: the file formats and atomic writes (saving.py), the summary table (summary.py),
exported programs (export.py).

Keras' weights map to torch's tensors: trainable weights are the parameters that require
grad; non-trainable ones are the frozen parameters and the floating-point buffers (BatchNorm's
running statistics, as Keras' moving mean and variance).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn

from torchcompile import saving
from torchcompile import summary as summary_module
from torchcompile.export import export_model
from torchcompile.metrics.metric import Metric

_NAMES_TAKEN: dict[str, int] = {}


class ModelIO:
    """Weights, layers and files of a model with ``module``, ``device`` and ``optimizer`` attributes."""

    @staticmethod
    def _default_name(name: str | None, prefix: str | None = None) -> str:
        """``name``, or Keras' default: the snake_case class name, ``_1``, ``_2``... when taken."""
        return name if name is not None else _unique(prefix)

    @property
    def trainable_weights(self) -> list[torch.Tensor]:
        return [p for p in self.module.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[torch.Tensor]:
        frozen = [p for p in self.module.parameters() if not p.requires_grad]
        return frozen + [b for b in self.module.buffers() if b.is_floating_point()]

    @property
    def weights(self) -> list[torch.Tensor]:
        return self.trainable_weights + self.non_trainable_weights

    def count_params(self) -> int:
        """The number of values in ``weights`` (Keras)."""
        return sum(w.numel() for w in self.weights)

    @property
    def layers(self) -> list[nn.Module]:
        """The network's direct submodules (for ``tc.Sequential``, its layers), or the module itself."""
        children = [m for m in self.module.children() if not isinstance(m, Metric)]
        return children if children or self.module is self else [self.module]

    def get_layer(self, name: str | None = None, index: int | None = None) -> nn.Module:
        """A submodule by its ``named_modules`` name (``"0"``, ``"encoder.layer.1"``) or by index into ``layers``."""
        if (name is None) == (index is None):
            raise ValueError(
                f"Pass either `name` or `index` to get_layer(), not both. Received: name={name!r}, index={index!r}"
            )
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"The model has {len(self.layers)} layers. Received: index={index}")
            return self.layers[index]
        modules = dict(itertools.islice(self.module.named_modules(), 1, None))
        if name not in modules:
            raise ValueError(f"No layer named {name!r}; the layers are {sorted(modules)}. Received: name={name!r}")
        return modules[name]

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

    def export(
        self, filepath: str, format: str = "torch", verbose: bool | None = None, input_signature: Any = None, **kwargs
    ) -> None:
        """Keras' ``export``: a ``torch.export`` program (``format="torch"``, ``.pt2``) or ONNX, the batch
        dimension dynamic; ``tc.load_exported(path)`` runs either (docs/logging.md)."""
        export_model(self, filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    def summary(
        self, input_shape: Any = None, line_length: int | None = None, print_fn: Any = None, expand_nested: bool = False
    ) -> None:
        """Keras' table: submodules, output shapes (from the first batch, or ``input_shape``), parameters."""
        summary_module.print_summary(
            self, input_shape=input_shape, line_length=line_length, print_fn=print_fn, expand_nested=expand_nested
        )


def _unique(prefix: str | None) -> str:
    base = prefix or "model"
    count = _NAMES_TAKEN.get(base, 0)
    _NAMES_TAKEN[base] = count + 1
    return base if count == 0 else f"{base}_{count}"
