# SPDX-License-Identifier: Apache-2.0
"""torchcompile: the Keras training workflow for any torch.nn.Module.

import torchcompile as tc
model = tc.Model(module)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=5, validation_split=0.2)
"""

from torchcompile import callbacks, distribution, losses, metrics, mixed_precision, optimizers, utils
from torchcompile.export import load_exported
from torchcompile.loading import load_model
from torchcompile.model import Model, Sequential
from torchcompile.plotting import plot_history

__version__ = "0.1.0"
__all__ = [
    "Model",
    "Sequential",
    "load_model",
    "load_exported",
    "plot_history",
    "callbacks",
    "distribution",
    "losses",
    "metrics",
    "mixed_precision",
    "utils",
    "optimizers",
    "__version__",
]
