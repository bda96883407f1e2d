# SPDX-License-Identifier: Apache-2.0
"""pandas DataFrames and Series are arrays, as in Keras 3 (issue 15)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from torchcompile.engine import data_adapters as da
from torchcompile.engine import pandas_adapter

pd = pytest.importorskip("pandas")
CPU = torch.device("cpu")


@pytest.fixture
def frame():
    return pd.DataFrame(
        {"a": np.arange(6, dtype=np.float64), "b": np.arange(6, dtype=np.int64) * 10, "c": [True, False] * 3}
    )


def test_dataframe_is_one_2d_float_input(frame):
    x = da.to_tensors(frame)
    assert x.shape == (6, 3) and x.dtype == torch.float32 and x[1].tolist() == [1.0, 10.0, 0.0]


def test_series_is_a_column_as_keras_makes_it(frame):
    y = da.to_tensors(frame["b"])
    assert y.shape == (6, 1) and y.dtype == torch.int64


def test_dict_of_series_is_a_dict_input(frame):
    x = da.to_tensors(dict(frame))
    assert list(x) == ["a", "b", "c"] and x["a"].shape == (6, 1) and x["c"].dtype == torch.bool


def test_pandas_objects_are_array_like(frame):
    assert da.is_array_like(frame) and da.is_array_like(frame["a"]) and da.is_array_like(dict(frame))


def test_dataframe_batches_equal_its_numpy_batches(frame):
    y = frame.pop("b")
    ours = list(da.get_data_adapter(frame, y, batch_size=4))
    numpy = list(da.get_data_adapter(frame.to_numpy("float32"), y.to_numpy().reshape(-1, 1), batch_size=4))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ours, numpy))


def test_dataframe_follows_float_dtype(frame):
    assert da.to_tensors(frame, torch.float64).dtype == torch.float64


def test_float32_dataframe_is_converted_once_without_a_second_copy():
    frame = pd.DataFrame(np.ones((5, 3), np.float32))
    x = da.to_tensors(frame)
    assert x.dtype == torch.float32 and x.is_contiguous() and x.shape == (5, 3)


def test_nullable_integer_column_with_missing_values_becomes_nan():
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64")})
    x = da.to_tensors(frame)
    assert x.dtype == torch.float32 and torch.isnan(x[1, 0])


@pytest.mark.parametrize(
    "column, dtype",
    [
        (pd.Series(["x", "y", "x"], dtype=object), "object"),
        (pd.Series(["x", "y", "x"]), "(str|object)"),
        (pd.Categorical(["x", "y", "x"]), "category"),
        (pd.date_range("2024", periods=3), "datetime"),
    ],
)
def test_non_numeric_columns_are_refused_naming_them_and_an_encoding(column, dtype):
    frame = pd.DataFrame({"ok": [1.0, 2.0, 3.0], "city": column})
    with pytest.raises(TypeError, match=rf"'city' \({dtype}.*pd.get_dummies.*cat.codes"):
        da.get_data_adapter(frame)


def test_non_numeric_series_is_refused_naming_it():
    with pytest.raises(TypeError, match="'kind'"):
        da.to_tensors(pd.Series(["a", "b"], name="kind"))


def test_is_pandas_checks_the_module_name_only():
    assert pandas_adapter.is_pandas(pd.Series([1.0])) and not pandas_adapter.is_pandas(np.zeros(2))


def test_pandas_is_imported_only_when_the_user_passes_a_pandas_object():
    code = (
        "import sys, numpy as np, torch, torchcompile as tc\n"
        "m = tc.Model(torch.nn.Linear(2, 1), device='cpu'); m.compile(optimizer='sgd', loss='mse')\n"
        "m.fit(np.zeros((4, 2), np.float32), np.zeros(4, np.float32), verbose=0)\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
