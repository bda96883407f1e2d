"""tc.utils.set_random_seed: one call makes a fit repeatable; the deterministic switch."""

import random

import numpy as np
import pytest
import torch

import torchcompile as tc


def _seeded_fit(seed):
    tc.utils.set_random_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
    model = tc.Model(module, device="cpu")
    model.compile("adam", "mse")
    x = np.random.random((24, 4)).astype("float32")  # NumPy's global generator: seeded too
    y = np.random.random((24, 1)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=2, shuffle=True, verbose=0)
    return [p.detach().clone() for p in module.parameters()]


def test_set_random_seed_makes_two_fits_identical():
    for first, second in zip(_seeded_fit(7), _seeded_fit(7)):
        torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_set_random_seed_different_seeds_differ():
    assert not torch.equal(_seeded_fit(1)[0], _seeded_fit(2)[0])


def test_set_random_seed_seeds_python_numpy_and_torch():
    tc.utils.set_random_seed(3)
    first = (random.random(), np.random.random(), torch.rand(1).item())
    tc.utils.set_random_seed(3)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == first


@pytest.mark.parametrize("seed", [-1, 1.5, "1", True])
def test_set_random_seed_refuses_what_is_not_a_seed(seed):
    with pytest.raises(ValueError, match="Received: seed="):
        tc.utils.set_random_seed(seed)


def test_set_random_seed_deterministic_switch_turns_on_and_off():
    try:
        tc.utils.set_random_seed(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
        tc.utils.set_random_seed(0)  # None: left as it is
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        tc.utils.set_random_seed(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
