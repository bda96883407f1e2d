# SPDX-License-Identifier: Apache-2.0
import pytest
import torch

from torchcompile.core.shapes import squeeze_or_expand_to_same_rank


@pytest.mark.parametrize(
    "shape1, shape2, expected1, expected2",
    [
        ((8, 1), (8,), (8, 1), (8, 1)),  # rank 1 is expanded (Keras' expand_rank_1=True)
        ((8,), (8, 1), (8, 1), (8, 1)),
        ((8, 4, 1), (8, 4), (8, 4), (8, 4)),  # otherwise the trailing 1 is squeezed
        ((8, 3), (8, 3), (8, 3), (8, 3)),
        ((8, 3), (8,), (8, 3), (8,)),  # a gap not made by a trailing 1 is left alone
    ],
)
def test_squeeze_or_expand_matches_keras_rule(shape1, shape2, expected1, expected2):
    x1, x2 = squeeze_or_expand_to_same_rank(torch.zeros(shape1), torch.zeros(shape2))
    assert (tuple(x1.shape), tuple(x2.shape)) == (expected1, expected2)


def test_squeeze_or_expand_without_expand_rank_1_squeezes():
    x1, x2 = squeeze_or_expand_to_same_rank(torch.zeros(8, 1), torch.zeros(8), expand_rank_1=False)
    assert tuple(x1.shape) == (8,) and tuple(x2.shape) == (8,)
