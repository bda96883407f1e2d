# SPDX-License-Identifier: Apache-2.0
"""Keras' ``set_random_seed``: one call that seeds Python, NumPy and torch (CPU and every GPU).

Owns: seeding the global generators, and the ``deterministic`` switch (torch's deterministic
algorithms, cuDNN's settings, cuBLAS' workspace). Not: per-epoch shuffling (it draws from
torch's generator, so seeding here makes it repeatable) or DataLoader worker seeds (torch derives
them from its generator too).
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["set_random_seed"]

# cuBLAS needs a fixed workspace to pick reproducible reductions (CUDA >= 10.2); torch's docs name
# these two values. Read when cuBLAS first starts, so it must be set before the first matmul on CUDA.
_CUBLAS_WORKSPACE = ":4096:8"


def set_random_seed(seed: int, deterministic: bool | None = None) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all CUDA devices).

    Two runs that call this with the same seed before building the module draw the same initial
    weights, shuffles and dropout masks on the CPU. On a GPU, some kernels (atomic adds in
    ``index_add``, scatter, some cuDNN convolutions and their backward) still add in a different
    order from run to run; ``deterministic=True`` removes that too.

    Args:
        seed: a non-negative integer.
        deterministic: True turns on ``torch.use_deterministic_algorithms(True)``,
            ``torch.backends.cudnn.deterministic = True`` and ``cudnn.benchmark = False``, and
            sets ``CUBLAS_WORKSPACE_CONFIG`` when it is unset. Cost: cuDNN no longer tunes its
            algorithms and several CUDA kernels take slower deterministic paths (often a few to
            tens of percent on convolution and embedding-heavy models, nothing on the CPU), cuBLAS
            holds a little more workspace memory, and ops that have no deterministic version raise
            a RuntimeError naming themselves. False turns all of it off again; None (the
            default) leaves these settings as they are.

    Example:
        >>> tc.utils.set_random_seed(1337)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer. Received: seed={seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # NumPy's global seed is 32-bit
    torch.manual_seed(seed)  # also seeds every CUDA device (torch.cuda.manual_seed_all)
    if deterministic is not None:
        _set_deterministic(bool(deterministic))


def _set_deterministic(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", _CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    if enabled:
        torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing, which varies
