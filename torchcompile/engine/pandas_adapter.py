# SPDX-License-Identifier: Apache-2.0
"""pandas DataFrames and Series as arrays, as Keras 3's array adapter takes them.

Owns: recognising a pandas object without importing pandas (by its type's module), refusing
non-numeric columns, and turning a DataFrame into one 2-D NumPy array and a Series into an
``(n, 1)`` column (Keras' ``PandasSeriesSliceable``). pandas is imported only here, and only
once the user has passed a pandas object. Not: tensors or batching (data_adapters.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_pandas(x: Any) -> bool:
    """True for a pandas DataFrame or Series (checked by module name: pandas is never imported for it)."""
    return type(x).__module__.startswith("pandas") and type(x).__name__ in ("DataFrame", "Series")


def to_numpy(x: Any) -> np.ndarray:
    """A DataFrame → one ``(n, columns)`` array; a Series → an ``(n, 1)`` array (Keras' layout).

    Columns of different numeric dtypes share their common NumPy dtype (ints and floats make
    floats); nullable columns with missing values become floats with NaN. Categorical, object,
    string and datetime columns are refused, naming them.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype  # the user passed pandas: it is there

    frame = x.to_frame() if type(x).__name__ == "Series" else x
    bad = [(name, str(dtype)) for name, dtype in frame.dtypes.items() if not _numeric(dtype, is_numeric_dtype)]
    if bad:
        names = [name for name, _ in bad]
        raise TypeError(
            "pandas columns must hold numbers to become an array, but "
            + ", ".join(f"{name!r} ({dtype})" for name, dtype in bad)
            + (" does not" if len(bad) == 1 else " do not")
            + ". Encode them first: one-hot with `pd.get_dummies(df, columns="
            + f"{names!r}, dtype='float32')`, or integer codes with `df[col].astype('category').cat.codes` "
            "(then an nn.Embedding), or drop them. Received: non-numeric columns "
            f"{names!r}"
        )
    dtypes = [getattr(d, "numpy_dtype", d) for d in frame.dtypes]  # nullable dtypes → their NumPy dtype
    target = np.result_type(*dtypes) if dtypes else np.dtype(np.float32)
    if any(not isinstance(d, np.dtype) for d in frame.dtypes) and frame.isna().to_numpy().any():
        if not is_bool_dtype(target) and target.kind != "f":
            target = np.dtype(np.float64)  # a missing integer becomes NaN, as pandas' own float conversion
        array = frame.to_numpy(dtype=target, na_value=np.nan)
    else:
        array = frame.to_numpy(dtype=target)
    return array


def _numeric(dtype: Any, is_numeric_dtype: Any) -> bool:
    # pandas counts bool as numeric; categorical, object, string and datetime are not.
    return bool(is_numeric_dtype(dtype)) and str(dtype) != "category"
