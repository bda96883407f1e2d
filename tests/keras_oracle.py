# SPDX-License-Identifier: Apache-2.0
"""Keras 3 (torch backend) as the executable reference for differential tests.

Import this module only from tests marked ``keras``; it skips them when keras is absent.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")


def to_numpy(x):
    """A Keras result (a torch tensor on the torch backend) as a NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x))


def loss(identifier, y_true, y_pred, sample_weight=None, **kwargs):
    """Keras' value of a loss given by id (with ``kwargs`` for its class) or class name."""
    fn = keras.losses.get(identifier) if not kwargs else getattr(keras.losses, identifier)(**kwargs)
    if not isinstance(fn, keras.losses.Loss):
        from keras.src.losses import LossFunctionWrapper  # not exported by keras.losses in 3.15

        fn = LossFunctionWrapper(fn)
    return to_numpy(fn(y_true, y_pred, sample_weight=sample_weight))


def metric_updates(metric, updates):
    """Feed ``updates`` (tuples of update_state arguments) to a Keras metric; return result()."""
    for args in updates:
        metric.update_state(*args)
    return to_numpy(metric.result())
