# SPDX-License-Identifier: Apache-2.0
"""Keras' ``keras.utils`` names that a port reaches for (one module each underneath)."""

from __future__ import annotations

from torchcompile.core.batches import pack_x_y_sample_weight, unpack_x_y_sample_weight
from torchcompile.utils.py_dataset import PyDataset
from torchcompile.utils.random import set_random_seed

__all__: list[str] = ["PyDataset", "pack_x_y_sample_weight", "set_random_seed", "unpack_x_y_sample_weight"]
