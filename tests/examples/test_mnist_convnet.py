# SPDX-License-Identifier: Apache-2.0
"""examples/mnist_convnet.py in reduced mode: it runs end to end and learns the stand-in digits."""

from __future__ import annotations

import numpy as np

# Chance is 0.10; the full run (2000 images, 15 epochs) reaches 1.0; this one about 0.93.
REDUCED_TEST_ACCURACY_BAR = 0.80


def test_mnist_convnet_load_data_has_mnist_shapes(load_example):
    (x_train, y_train), (x_test, y_test) = load_example("mnist_convnet").load_data(50, 20)
    assert x_train.shape == (50, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (20, 28, 28) and set(np.unique(y_train)) <= set(range(10))


def test_mnist_convnet_reduced_mode_learns(load_example):
    accuracy = load_example("mnist_convnet").main(num_train=600, num_test=300, epochs=3, batch_size=32, verbose=0)
    assert accuracy > REDUCED_TEST_ACCURACY_BAR
