# SPDX-License-Identifier: Apache-2.0
"""keras.io "Simple MNIST convnet" (fchollet), ported: the same convnet as a torch module.

Offline stand-in data: MNIST is not downloaded. `load_data` draws 28x28 greyscale digits
from a 5x7 pixel font, scaled up, shifted, thickened and noised at random, with MNIST's
shapes and dtypes (uint8 images, int labels 0-9). The training code below follows the
tutorial line for line; images are channels-first, (N, 1, 28, 28), as torch's Conv2d wants.

    python examples/mnist_convnet.py      # about 20 s on a 2-core CPU
"""

import numpy as np
import torch
from torch import nn

import torchcompile as tc

_FONT = [
    "01110 10001 10011 10101 11001 10001 01110",
    "00100 01100 00100 00100 00100 00100 01110",
    "01110 10001 00001 00010 00100 01000 11111",
    "11110 00001 00001 01110 00001 00001 11110",
    "00010 00110 01010 10010 11111 00010 00010",
    "11111 10000 11110 00001 00001 10001 01110",
    "00110 01000 10000 11110 10001 10001 01110",
    "11111 00001 00010 00100 01000 01000 01000",
    "01110 10001 10001 01110 10001 10001 01110",
    "01110 10001 10001 01111 00001 00010 01100",
]
_GLYPHS = np.array([[[c == "1" for c in row] for row in g.split()] for g in _FONT], dtype=np.float32)


def load_data(num_train=2000, num_test=1000, seed=0):
    """(x_train, y_train), (x_test, y_test) shaped like keras.datasets.mnist.load_data()."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 10, size=n)
        glyphs = _GLYPHS[y].repeat(3, axis=1).repeat(3, axis=2)  # (n, 21, 15) strokes
        thick = rng.random(n) < 0.5  # half drawn bolder
        glyphs[thick, :, 1:] = np.maximum(glyphs[thick, :, 1:], glyphs[thick, :, :-1])
        x = np.zeros((n, 28, 28), dtype=np.float32)
        rows, cols = rng.integers(2, 6, size=n), rng.integers(4, 10, size=n)  # roughly centred
        for i in range(n):
            x[i, rows[i] : rows[i] + 21, cols[i] : cols[i] + 15] = glyphs[i] * rng.uniform(0.5, 1.0)
        x = np.clip(x + rng.normal(0.0, 0.2, size=x.shape), 0.0, 1.0)  # pixel noise
        return (x * 255).astype(np.uint8), y

    return draw(num_train), draw(num_test)


def main(num_train=2000, num_test=1000, epochs=15, batch_size=128, verbose="auto"):
    """Train the convnet; returns its test accuracy. The tests pass smaller numbers (reduced mode)."""
    torch.manual_seed(0)
    # Model / data parameters
    num_classes = 10
    input_shape = (1, 28, 28)  # Keras: (28, 28, 1); torch images are channels-first

    # Load the data and split it between train and test sets
    (x_train, y_train), (x_test, y_test) = load_data(num_train, num_test)

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (1, 28, 28)   # Keras: np.expand_dims(x_train, -1)
    x_train = np.expand_dims(x_train, 1)
    x_test = np.expand_dims(x_test, 1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices   # Keras: keras.utils.to_categorical(y, num_classes)
    y_train = np.eye(num_classes, dtype="float32")[y_train]
    y_test = np.eye(num_classes, dtype="float32")[y_test]

    # Keras: keras.Sequential([keras.Input(shape=input_shape), layers.Conv2D(32, kernel_size=(3, 3),
    # activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)), ... layers.Dense(num_classes,
    # activation="softmax")]). torch layers take their input size; Flatten gives 64 * 5 * 5.
    model = tc.Sequential(
        [
            nn.Conv2d(input_shape[0], 32, kernel_size=(3, 3)),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(2, 2)),
            nn.Conv2d(32, 64, kernel_size=(3, 3)),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=(2, 2)),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(64 * 5 * 5, num_classes),
            nn.Softmax(dim=-1),
        ]
    )

    # Keras: model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    # Keras: model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=verbose)

    # Keras: score = model.evaluate(x_test, y_test, verbose=0)
    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    return score[1]


if __name__ == "__main__":
    main()
