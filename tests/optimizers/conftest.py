# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the optimizer tests."""

import pytest


@pytest.fixture
def keras_float64():
    """Keras computing in float64 (its learning-rate variable included), restored afterwards.

    Trajectories then differ only by the update rules, not by Keras' float32 scalars.
    """
    from tests.keras_oracle import keras

    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(previous)
