# SPDX-License-Identifier: Apache-2.0
"""core/batches.py: Keras' packing of a batch, and a one-element batch kept in the form the data yielded."""

import pytest
import torch

from torchcompile.core.batches import for_step, pack_x_y_sample_weight, unpack_x_y_sample_weight, yielded_as
from torchcompile.core.tree import map_structure

X, Y = torch.zeros(2, 3), torch.ones(2)


@pytest.mark.parametrize("form", [list, tuple])
def test_a_one_element_batch_reaches_the_step_in_the_form_the_data_yielded(form):
    batch = yielded_as(form([X]), X, None, None)
    assert tuple(batch) == (X, None, None)  # the engine still sees (x, y, sample_weight)
    moved = map_structure(lambda t: t, batch)  # as the device move rebuilds it
    data = for_step(moved)
    assert type(data) is form and len(data) == 1 and data[0] is X
    assert unpack_x_y_sample_weight(data) == (X, None, None)  # the default steps unpack it as x


@pytest.mark.parametrize("batch", [X, (X, Y), [X, Y]])
def test_other_batches_are_packed_as_keras_packs_them(batch):
    x, y, sample_weight = unpack_x_y_sample_weight(batch)
    packed = for_step(yielded_as(batch, x, y, sample_weight))
    if y is None:
        assert packed is X
    else:
        assert packed == pack_x_y_sample_weight(x, y, sample_weight) and type(packed) is tuple
