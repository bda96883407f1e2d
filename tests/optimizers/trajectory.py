# SPDX-License-Identifier: Apache-2.0
"""Run the same gradient sequence through our optimizer and Keras'; the optimizer tests' oracle.

A case is ``(id, kwargs)`` with Keras argument names; a ``learning_rate`` given as
``(schedule_name, schedule_kwargs)`` becomes the schedule class of each library.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchcompile import optimizers

SHAPES = [(4, 3), (3,)]
SHAPES_3D = SHAPES + [(2, 3, 4)]  # Adafactor factors the last two axes of higher-rank tensors
STEPS = 50

# Keras' class for each of our ids (Keras' get() lacks 'lamb', so resolve by class name).
KERAS_CLASS = {name: type(optimizers.get(name)).__name__ for name in optimizers.ALL_OBJECTS.names()}


def weights_and_grads(
    rng: np.random.Generator, steps: int = STEPS, dtype: str = "float64", shapes: list = SHAPES
) -> tuple[list, list]:
    """Initial weights and a gradient sequence, one array per shape."""
    w0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return w0, grads


def _resolve(kwargs: dict, schedules_module) -> dict:
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), tuple):
        name, args = kwargs["learning_rate"]
        kwargs["learning_rate"] = getattr(schedules_module, name)(**args)
    return kwargs


def spec(name: str, kwargs: dict) -> optimizers.Optimizer:
    return getattr(optimizers, KERAS_CLASS[name])(**_resolve(kwargs, optimizers.schedules))


def run_ours(optimizer: torch.optim.Optimizer, params: list, grads: list) -> None:
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor(g)
        optimizer.step()


def ours(name: str, kwargs: dict, w0: list, grads: list, finalize: bool = False) -> list[np.ndarray]:
    params = [torch.nn.Parameter(torch.tensor(w)) for w in w0]
    optimizer = spec(name, kwargs).build(params)
    run_ours(optimizer, params, grads)
    if finalize:
        optimizers.finalize_variable_values(optimizer)
    return [p.detach().numpy() for p in params]


def keras_final(name: str, kwargs: dict, w0: list, grads: list, finalize: bool = False) -> list[np.ndarray]:
    from tests.keras_oracle import keras, to_numpy

    optimizer = getattr(keras.optimizers, KERAS_CLASS[name])(**_resolve(kwargs, keras.optimizers.schedules))
    variables = [keras.Variable(w, dtype=str(w.dtype)) for w in w0]
    for step in grads:
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g, dtype=str(g.dtype)) for g in step], variables))
    if finalize:
        optimizer.finalize_variable_values(variables)
    return [to_numpy(v) for v in variables]


def relative_difference(ours_w: list, keras_w: list, w0: list) -> float:
    """max |ours - keras| over max |keras - w0|: the difference as a fraction of the distance travelled."""
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ours_w, keras_w))
    travelled = max(float(np.max(np.abs(b - w))) for b, w in zip(keras_w, w0))
    return diff / travelled


def difference_from_keras(
    name: str, kwargs: dict, rng: np.random.Generator, finalize: bool = False, shapes: list = SHAPES
) -> float:
    """Run 50 steps through both libraries in float64; the relative difference of the final weights."""
    w0, grads = weights_and_grads(rng, shapes=shapes)
    return relative_difference(
        ours(name, kwargs, w0, grads, finalize), keras_final(name, kwargs, w0, grads, finalize), w0
    )


def assert_same_config(ours: dict, theirs: dict, keys: set) -> None:
    """Numbers equal within Keras' float32 rounding (rel 1e-7); anything else exactly."""
    for key in sorted(keys):
        if isinstance(theirs[key], float) and isinstance(ours[key], (int, float)):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-7), key
        else:
            assert ours[key] == theirs[key], key
