# SPDX-License-Identifier: Apache-2.0
"""examples/tabular_regression.py: EarlyStopping ends training early and the MLP beats the mean."""

from __future__ import annotations

import re

# Predicting the training mean scores about 4.4 MPG MAE and the noise floor is about 1.2; the full
# run (patience 10) reaches about 1.3.
REDUCED_TEST_MAE_BAR = 2.5


def test_tabular_regression_load_data_has_auto_mpg_columns(load_example):
    example = load_example("tabular_regression")
    data = example.load_data()
    assert list(data.columns) == example.column_names and len(data) == 398
    assert data.isna().any(axis=1).sum() == 6  # rows the tutorial drops with dropna()


def test_tabular_regression_reduced_mode_stops_early_and_learns(load_example, capsys):
    epochs = 300
    mae = load_example("tabular_regression").main(epochs=epochs, patience=5, verbose=0)
    trained = int(re.search(r"Stopped early after (\d+) of", capsys.readouterr().out).group(1))
    assert trained < epochs
    assert mae < REDUCED_TEST_MAE_BAR
