# SPDX-License-Identifier: Apache-2.0
"""Tiny models and data for callback tests (fits of a few batches)."""

import types

import numpy as np
import pytest
import torch

import torchcompile as tc


def make_model(optimizer="sgd", loss="mse", metrics=None, out=1):
    torch.manual_seed(0)
    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, out)), device="cpu")
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


@pytest.fixture
def data():
    rng = np.random.default_rng(1337)
    x, y = rng.random((10, 3), dtype=np.float32), rng.random((10, 1), dtype=np.float32)
    return x, y, rng.random((10, 3), dtype=np.float32), rng.random((10, 1), dtype=np.float32)


@pytest.fixture
def fake_model():
    """The attributes callbacks touch, without a network (Poutyne's style of hook tests)."""
    return types.SimpleNamespace(stop_training=False, metrics=[], optimizer=None)
