# SPDX-License-Identifier: Apache-2.0
"""Which process this is. Owns: ``is_distributed`` and ``is_rank_zero`` (who prints and writes).

Not: joining the process group or wrapping the module (engine/distributed.py).
"""

from __future__ import annotations

import os

import torch.distributed as dist


def is_distributed() -> bool:
    """Whether an initialised process group has more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_rank_zero() -> bool:
    """Whether this process prints and writes files: rank 0, or the only process.

    Before the process group exists, torchrun's ``RANK`` variable answers.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"
