# SPDX-License-Identifier: Apache-2.0
"""Metric tests run on tiny tensors: one intra-op thread avoids OpenMP contention on busy CPUs."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
