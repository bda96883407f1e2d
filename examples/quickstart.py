# SPDX-License-Identifier: Apache-2.0
"""Quickstart: train a small classifier with the Keras workflow, offline, in seconds on a CPU.

The data is generated here: 3 classes of points in 20 dimensions, separated by a random
linear map plus noise, so a small MLP learns it well within a few epochs. With matplotlib
installed (`pip install "torchcompile[plot]"`) it saves the learning curves to
quickstart_history.png; without it, it runs all the same.

    python examples/quickstart.py
"""

import importlib.util

import numpy as np
import torch

import torchcompile as tc


def make_data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)).astype("float32")
    w = np.random.default_rng(42).normal(size=(20, 3))
    y = (x @ w + 0.3 * rng.normal(size=(n, 3))).argmax(axis=1)
    return x, y


def main(epochs: int = 5, verbose: int | str = "auto", plot_path: str | None = None) -> float:
    torch.manual_seed(0)
    x_train, y_train = make_data(8000, seed=0)
    x_test, y_test = make_data(2000, seed=1)

    module = torch.nn.Sequential(
        torch.nn.Linear(20, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 3),
        torch.nn.Softmax(dim=-1),
    )
    model = tc.Model(module)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # To watch it in TensorBoard (pip install "torchcompile[tensorboard]"; tensorboard --logdir logs), pass
    # callbacks=[tc.callbacks.TensorBoard("logs")] to fit.
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.2, verbose=verbose)

    results = model.evaluate(x_test, y_test, return_dict=True, verbose=0)
    probabilities = model.predict(x_test[:5], verbose=0)
    print("predicted classes of 5 test points:", probabilities.argmax(axis=1), "true:", y_test[:5])
    print(f"final val_accuracy: {history.history['val_accuracy'][-1]:.4f}")
    print(f"test accuracy: {results['accuracy']:.4f}")
    if plot_path is not None and importlib.util.find_spec("matplotlib") is not None:
        history.plot(plot_path)  # loss and accuracy, train and validation
        print("learning curves saved to", plot_path)
    return history.history["val_accuracy"][-1]


if __name__ == "__main__":
    main(plot_path="quickstart_history.png")
