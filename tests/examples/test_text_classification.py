# SPDX-License-Identifier: Apache-2.0
"""examples/text_classification.py in reduced mode: it trains from DataLoaders and learns sentiment."""

from __future__ import annotations

import torch

# Chance is 0.50; the full run (5000 reviews, 10 epochs) reaches about 0.99; this one about 0.97.
REDUCED_TEST_ACCURACY_BAR = 0.85


def test_text_classification_load_data_is_vectorized_and_padded(load_example):
    example = load_example("text_classification")
    x, y = example.load_data(30)
    assert x.shape == (30, example.sequence_length) and x.dtype == torch.int64
    assert int(x.min()) == 0 and int(x.max()) < example.max_features  # 0 pads, ids fit the embedding
    assert set(y.tolist()) <= {0.0, 1.0}


def test_text_classification_reduced_mode_learns(load_example):
    accuracy = load_example("text_classification").main(num_train=4000, num_test=500, epochs=4, verbose=0)
    assert accuracy > REDUCED_TEST_ACCURACY_BAR
