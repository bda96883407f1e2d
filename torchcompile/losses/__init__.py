# SPDX-License-Identifier: Apache-2.0
"""Losses: Keras 3's loss functions, classes and ids, in torch (work in progress)."""
from __future__ import annotations

from torchcompile.losses.functions import *  # noqa: F401,F403
from torchcompile.losses.functions import __all__ as _function_names

__all__ = list(_function_names)
