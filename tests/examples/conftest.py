# SPDX-License-Identifier: Apache-2.0
"""Loads the scripts in examples/ as modules (they are not a package) for the example tests."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def load_example():
    """`load_example("mnist_convnet")` imports examples/mnist_convnet.py afresh and returns it."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"_tc_example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
