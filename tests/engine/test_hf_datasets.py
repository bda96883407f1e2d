# SPDX-License-Identifier: Apache-2.0
"""A Hugging Face ``datasets.Dataset`` is a Dataset; dict batches give up their labels (issue 15)."""

import pytest
import torch

from torchcompile.engine import data_adapters as da

datasets = pytest.importorskip("datasets")
CPU = torch.device("cpu")


@pytest.fixture
def table():
    return datasets.Dataset.from_dict(
        {"input_ids": [[i, i + 1, i + 2] for i in range(10)], "attention_mask": [[1, 1, 0]] * 10, "label": [0, 1] * 5}
    )


@pytest.mark.parametrize("formatting", ["with_format", "set_format"])
def test_torch_formatted_dataset_batches_as_a_dataset_with_labels_as_y(table, formatting):
    if formatting == "with_format":
        table = table.with_format("torch")
    else:
        table.set_format("torch")
    adapter = da.get_data_adapter(table, batch_size=4, device=CPU)
    x, y, _ = next(iter(adapter))
    assert adapter.num_batches == 3 and list(x) == ["input_ids", "attention_mask"]
    assert x["input_ids"].shape == (4, 3) and y.tolist() == [0, 1, 0, 1]


def test_unformatted_dataset_is_read_as_torch(table):
    x, y, _ = next(iter(da.get_data_adapter(table, batch_size=4)))
    assert isinstance(x["input_ids"], torch.Tensor) and x["input_ids"].shape == (4, 3)


def test_dataset_shuffle_draws_a_permutation(table):
    torch.manual_seed(3)
    ids = [int(i) for x, _, _ in da.get_data_adapter(table.with_format("torch"), batch_size=4, shuffle=True)
           for i in x["input_ids"][:, 0]]  # fmt: skip
    assert sorted(ids) == list(range(10)) and ids != list(range(10))


def test_text_columns_are_refused_naming_them(table):
    table = table.add_column("text", ["a"] * 10).with_format("torch")
    with pytest.raises(TypeError, match=r"columns \['text'\] hold strings.*remove_columns"):
        da.get_data_adapter(table, batch_size=4)


def test_text_columns_left_out_of_the_format_are_fine(table):
    table = table.add_column("text", ["a"] * 10).with_format("torch", columns=["input_ids", "label"])
    x, y, _ = next(iter(da.get_data_adapter(table, batch_size=4)))
    assert list(x) == ["input_ids"]


def test_dataset_accepts_fits_batch_size(table):
    assert da.accepts_batch_size(table)
