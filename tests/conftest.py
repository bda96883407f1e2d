# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures. KERAS_BACKEND must be set before anything imports keras."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Test models are tiny: one intra-op thread is faster than several and keeps parallel
# test runs on a 2-core machine from oversubscribing it.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_dist = pytest.mark.skip(reason="set TC_TEST_DISTRIBUTED=1 to run")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "distributed" in item.keywords and os.environ.get("TC_TEST_DISTRIBUTED") != "1":
            item.add_marker(skip_dist)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    return torch.device(request.param)
