# SPDX-License-Identifier: Apache-2.0
"""Validation during fit. Owns: `validation_split`, unpacking `validation_data` (and the batch
size it inherits), and `validation_freq`. Not: running it (engine/run.py), the array slicing it uses
(data_adapter_utils.train_validation_split)."""

from __future__ import annotations

from typing import Any

from torchcompile.engine import data_adapters


def split(x: Any, y: Any, sample_weight: Any, validation_split: float) -> tuple[tuple, tuple]:
    """Keras' split of in-memory arrays: ``((x, y, sw), (val_x, val_y, val_sw))``, the last
    fraction taken before any shuffling."""
    if not data_adapters.is_array_like(x):
        raise ValueError(
            "`validation_split` only works with in-memory arrays, because it takes the "
            "last fraction of them; for a Dataset, DataLoader or generator pass "
            f"`validation_data` instead. Received: validation_split={validation_split}, "
            f"x of type {type(x).__name__}"
        )
    x, y = data_adapters.split_labels(x, y)
    # Dtypes are kept (the adapters cast each side to the module's dtype); memory-mapped arrays stay
    # mapped, their split a pair of views to stream.
    arrays = tuple(data_adapters.to_tensors(a, None, keep_memmaps=True) for a in (x, y, sample_weight))
    data_adapters.check_lengths(*arrays)
    return data_adapters.train_validation_split(arrays, validation_split)


def should_validate(epoch: int, validation_freq: int | list) -> bool:
    if isinstance(validation_freq, int) and not isinstance(validation_freq, bool) and validation_freq >= 1:
        return (epoch + 1) % validation_freq == 0
    if isinstance(validation_freq, (list, tuple, set)):
        return epoch + 1 in validation_freq
    raise ValueError(
        "`validation_freq` must be a positive integer or a list of epoch numbers (1-based). "
        f"Received: validation_freq={validation_freq!r}"
    )


def unpack(validation_data: Any, validation_batch_size: int | None, batch_size: int | None) -> tuple:
    """``(x, y, sample_weight, batch_size)`` for validation.

    The fit ``batch_size`` carries over only to data we batch (arrays, a Dataset), as a
    DataLoader or generator refuses a batch size; an explicit ``validation_batch_size`` is
    passed on either way, so it is refused there rather than ignored.
    """
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError(
                "`validation_data` must be (x, y), (x, y, sample_weight), a Dataset, a "
                f"DataLoader or a generator. Received: a {type(validation_data).__name__} of "
                f"{len(validation_data)} elements"
            )
        vx, vy, vsw = data_adapters.unpack_x_y_sample_weight(tuple(validation_data))
    else:
        vx, vy, vsw = validation_data, None, None
    inherited = batch_size if data_adapters.accepts_batch_size(vx) else None
    return vx, vy, vsw, validation_batch_size or inherited
