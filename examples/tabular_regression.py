# SPDX-License-Identifier: Apache-2.0
"""The Keras "Basic regression: Predict fuel efficiency" tutorial (Auto MPG, tensorflow.org,
the version with EarlyStopping), ported: the same 64-64-1 MLP as a torch module.

Offline stand-in data: the UCI Auto MPG file is not downloaded. `load_data` draws 398 cars
with the same columns (392 left after dropping rows with a missing horsepower, as in the
tutorial). MPG follows a known nonlinear law, mpg = 70000 / weight, improving 3% a model year,
a little worse with horsepower, plus noise of 1.5 MPG; predicting the mean scores 4.4 MPG MAE.
The training code follows the tutorial line for line, pandas included: `fit` takes the
DataFrame and the popped Series as Keras 3 does (pandas is an optional dependency of
torchcompile: `pip install pandas`).

    python examples/tabular_regression.py      # a few seconds on a laptop CPU
"""

import numpy as np
import pandas as pd
import torch
from torch import nn

import torchcompile as tc

column_names = ["MPG", "Cylinders", "Displacement", "Horsepower", "Weight", "Acceleration", "Model Year", "Origin"]


def load_data(num_cars=398, seed=0):
    """A DataFrame of `column_names`, as pd.read_csv(auto-mpg.data) gives (NaN marks a missing horsepower)."""
    rng = np.random.default_rng(seed)
    cylinders = rng.choice([4, 6, 8], p=[0.5, 0.25, 0.25], size=num_cars)
    displacement = cylinders * rng.normal(45.0, 6.0, size=num_cars)
    horsepower = 0.35 * displacement + rng.normal(30.0, 8.0, size=num_cars)
    weight = 1400.0 + 8.0 * displacement + rng.normal(0.0, 250.0, size=num_cars)
    acceleration = 21.0 - horsepower / 25.0 + rng.normal(0.0, 1.5, size=num_cars)
    year = rng.integers(70, 83, size=num_cars)
    origin = np.where(cylinders == 8, 1, rng.choice([1, 2, 3], p=[0.4, 0.3, 0.3], size=num_cars))
    mpg = 70000.0 / weight * (1.0 + 0.03 * (year - 76)) - 0.02 * (horsepower - 100.0)
    mpg += rng.normal(0.0, 1.5, size=num_cars)
    horsepower[rng.choice(num_cars, size=6, replace=False)] = np.nan
    columns = [mpg, cylinders, displacement, horsepower, weight, acceleration, year, origin]
    return pd.DataFrame(dict(zip(column_names, columns)))


def build_model(num_features):
    # Keras: keras.Sequential([layers.Dense(64, activation='relu', input_shape=[len(train_dataset.keys())]),
    #                          layers.Dense(64, activation='relu'), layers.Dense(1)])
    model = tc.Sequential(
        [
            nn.Linear(num_features, 64),
            nn.ReLU(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 1),
        ]
    )
    optimizer = tc.optimizers.RMSprop(0.001)  # Keras: tf.keras.optimizers.RMSprop(0.001)

    # Keras: model.compile(loss='mse', optimizer=optimizer, metrics=['mae', 'mse'])
    model.compile(loss="mse", optimizer=optimizer, metrics=["mae", "mse"])  # "mse" = mean_squared_error
    return model


def main(num_cars=398, epochs=1000, patience=10, verbose=0):
    """Train with early stopping; returns the test mean absolute error in MPG (lower is better)."""
    torch.manual_seed(0)
    EPOCHS = epochs
    raw_dataset = load_data(num_cars)  # Keras: pd.read_csv(dataset_path, names=column_names, ...)
    dataset = raw_dataset.copy()
    dataset = dataset.dropna()
    origin = dataset.pop("Origin")
    dataset["USA"] = (origin == 1) * 1.0
    dataset["Europe"] = (origin == 2) * 1.0
    dataset["Japan"] = (origin == 3) * 1.0

    train_dataset = dataset.sample(frac=0.8, random_state=0)
    test_dataset = dataset.drop(train_dataset.index)
    train_stats = train_dataset.describe()
    train_stats.pop("MPG")
    train_stats = train_stats.transpose()

    train_labels = train_dataset.pop("MPG")
    test_labels = test_dataset.pop("MPG")

    def norm(x):
        return (x - train_stats["mean"]) / train_stats["std"]

    normed_train_data = norm(train_dataset)
    normed_test_data = norm(test_dataset)

    model = build_model(len(train_dataset.keys()))

    # The patience parameter is the amount of epochs to check for improvement
    # Keras: early_stop = keras.callbacks.EarlyStopping(monitor='val_loss', patience=10)
    early_stop = tc.callbacks.EarlyStopping(monitor="val_loss", patience=patience)

    # Keras: early_history = model.fit(normed_train_data, train_labels, epochs=EPOCHS,
    #                                  validation_split=0.2, verbose=0, callbacks=[early_stop, ...])
    early_history = model.fit(
        normed_train_data, train_labels, epochs=EPOCHS, validation_split=0.2, verbose=verbose, callbacks=[early_stop]
    )
    print(f"Stopped early after {len(early_history.epoch)} of {EPOCHS} epochs")

    # Keras: loss, mae, mse = model.evaluate(normed_test_data, test_labels, verbose=2)
    loss, mae, mse = model.evaluate(normed_test_data, test_labels, verbose=2)
    print("Testing set Mean Abs Error: {:5.2f} MPG".format(mae))
    return mae


if __name__ == "__main__":
    main()
