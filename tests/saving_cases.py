# SPDX-License-Identifier: Apache-2.0
"""Modules, models and data shared by test_saving.py and test_loading.py."""

import numpy as np
import torch
from torch import nn

import torchcompile as tc


class Net(nn.Module):
    def __init__(self, hidden=5):
        super().__init__()
        self.dense = nn.Linear(3, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.out(self.norm(self.dense(x)))


class Evil:
    """Unpickling this runs code: it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def my_loss(y_true, y_pred):
    return ((y_true - y_pred) ** 2).mean(dim=-1)


def my_metric(y_true, y_pred):
    return (y_true - y_pred).abs().mean(dim=-1)


def model_of(module=None, **compile_kwargs):
    torch.manual_seed(0)
    model = tc.Model(module or Net(), device="cpu")
    model.compile(**{"optimizer": "adam", "loss": "mse", **compile_kwargs})
    return model


def data(n=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 3), dtype=np.float32), rng.random((n, 1), dtype=np.float32)


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def unchanged(module, before):
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())
