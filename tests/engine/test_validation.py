# SPDX-License-Identifier: Apache-2.0
"""engine/validation.py: validation_split (Keras' floor rule), validation_freq, and unpacking
validation_data with the batch size it inherits."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchcompile.engine.validation import should_validate, split, unpack


def _arrays(n):
    return torch.arange(n, dtype=torch.float32).reshape(n, 1), torch.arange(n) * 2, torch.ones(n)


# ---------------------------------------------------------------- split
def test_split_takes_the_last_fraction_as_validation():
    (x, y, sw), (vx, vy, vsw) = split(*_arrays(10), 0.3)
    assert x[:, 0].tolist() == list(range(7)) and vx[:, 0].tolist() == [7, 8, 9]
    assert vy.tolist() == [14, 16, 18] and len(sw) == 7 and len(vsw) == 3


@pytest.mark.parametrize("n, fraction, n_val", [(10, 0.25, 3), (10, 0.35, 4), (5, 0.5, 3), (3, 0.1, 1)])
def test_split_floors_the_training_share_as_keras(n, fraction, n_val):
    _, (vx, _, _) = split(*_arrays(n), fraction)  # Keras: split_at = floor(n * (1 - fraction))
    assert len(vx) == n_val


def test_split_keeps_a_missing_sample_weight_missing():
    x, y, _ = _arrays(4)
    (_, _, sw), (_, _, vsw) = split(x, y, None, 0.5)
    assert sw is None and vsw is None


def test_split_keeps_dtypes():
    x = np.arange(8, dtype="float64").reshape(4, 2)
    (tx, ty, _), _ = split(x, np.arange(4, dtype="int32"), None, 0.5)
    assert tx.dtype == torch.float64 and ty.dtype == torch.int32


def test_split_refuses_data_that_is_not_in_memory_arrays():
    loader = DataLoader(TensorDataset(torch.zeros(4, 1), torch.zeros(4, 1)), batch_size=2)
    with pytest.raises(ValueError, match=r"only works with in-memory arrays.*x of type DataLoader"):
        split(loader, None, None, 0.5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_refuses_a_fraction_outside_zero_to_one(fraction):
    with pytest.raises(ValueError, match="must be a float in \\(0, 1\\)"):
        split(*_arrays(10), fraction)


def test_split_refuses_a_fraction_that_leaves_one_side_empty():
    with pytest.raises(ValueError, match="leaves no samples on one side of the split of 1 samples"):
        split(*_arrays(1), 0.5)


def test_split_refuses_arrays_of_different_lengths():
    x, y, _ = _arrays(4)
    with pytest.raises(ValueError, match="x has 4, y has 3"):
        split(x, y[:3], None, 0.5)


# ---------------------------------------------------------------- should_validate
@pytest.mark.parametrize(
    "freq, expected",
    [(1, [True, True, True, True]), (2, [False, True, False, True]), (3, [False, False, True, False])],
)
def test_should_validate_every_freq_epochs(freq, expected):
    assert [should_validate(epoch, freq) for epoch in range(4)] == expected


@pytest.mark.parametrize("freq", [[1, 3], (1, 3), {1, 3}], ids=["list", "tuple", "set"])
def test_should_validate_the_listed_one_based_epochs(freq):
    assert [should_validate(epoch, freq) for epoch in range(4)] == [True, False, True, False]


@pytest.mark.parametrize("freq", [0, -1, True, 1.5, "2", None])
def test_should_validate_refuses_a_bad_validation_freq(freq):
    with pytest.raises(ValueError, match="`validation_freq` must be a positive integer or a list"):
        should_validate(0, freq)


# ---------------------------------------------------------------- unpack
def test_unpack_takes_x_and_y_and_inherits_the_batch_size_for_arrays():
    x, y = np.zeros((4, 1)), np.zeros(4)
    vx, vy, vsw, batch_size = unpack((x, y), None, 32)
    assert vx is x and vy is y and vsw is None and batch_size == 32


def test_unpack_takes_a_list_with_sample_weight():
    x, y, sw = np.zeros((4, 1)), np.zeros(4), np.ones(4)
    assert unpack([x, y, sw], None, None)[2] is sw


def test_unpack_prefers_validation_batch_size():
    assert unpack((np.zeros((4, 1)), np.zeros(4)), 2, 32)[3] == 2


def test_unpack_inherits_no_batch_size_for_a_data_loader():
    loader = DataLoader(TensorDataset(torch.zeros(4, 1), torch.zeros(4)), batch_size=2)
    assert unpack(loader, None, 32) == (loader, None, None, None)


def test_unpack_passes_an_explicit_validation_batch_size_on_for_a_data_loader():
    loader = DataLoader(TensorDataset(torch.zeros(4, 1), torch.zeros(4)), batch_size=2)
    assert unpack(loader, 8, 32)[3] == 8  # the adapter then refuses it rather than ignoring it


@pytest.mark.parametrize("size", [1, 4])
def test_unpack_refuses_tuples_that_are_not_x_y_or_x_y_sample_weight(size):
    with pytest.raises(ValueError, match=rf"Received: a tuple of {size} elements"):
        unpack(tuple(np.zeros(2) for _ in range(size)), None, None)
