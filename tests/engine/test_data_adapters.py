import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchcompile.engine import data_adapters as da

CPU = torch.device("cpu")


def test_to_tensors_converts_float64_to_float32():
    assert da.to_tensors(np.zeros((2, 3))).dtype == torch.float32


def test_to_tensors_does_not_copy_float32_arrays():
    array = np.zeros((4, 3), dtype=np.float32)
    tensor = da.to_tensors(array)
    tensor[0, 0] = 5
    assert array[0, 0] == 5


def test_to_tensors_accepts_python_lists_of_numbers():
    assert da.to_tensors([[1.0, 2.0], [3.0, 4.0]]).shape == (2, 2)


def test_check_lengths_refuses_x_and_y_of_different_lengths():
    with pytest.raises(ValueError, match="x has 10, y has 9"):
        da.check_lengths(torch.zeros(10, 2), torch.zeros(9), None)


def test_check_lengths_refuses_empty_data():
    with pytest.raises(ValueError, match="empty"):
        da.check_lengths(torch.zeros(0, 2), torch.zeros(0), None)


def test_train_validation_split_takes_the_last_fraction():
    x = torch.arange(10.0)
    (train, _, _), (val, _, _) = da.train_validation_split((x, None, None), 0.25)
    assert train.tolist() == list(range(7)) and val.tolist() == [7.0, 8.0, 9.0]  # floor(10 * 0.75) = 7


def test_array_adapter_includes_the_last_partial_batch():
    adapter = da.get_data_adapter(np.arange(10.0), np.arange(10), batch_size=4, device=CPU)
    sizes = [batch[0].shape[0] for batch in adapter]
    assert sizes == [4, 4, 2] and adapter.num_batches == 3


def test_array_adapter_draws_a_new_permutation_each_epoch():
    adapter = da.get_data_adapter(np.arange(100.0), np.arange(100), batch_size=100, shuffle=True, device=CPU)
    first, second = (next(iter(adapter))[0] for _ in range(2))
    assert sorted(first.tolist()) == list(range(100)) and not torch.equal(first, second)


def test_array_adapter_keeps_x_and_y_aligned_when_shuffling():
    adapter = da.get_data_adapter(np.arange(50.0), np.arange(50), batch_size=7, shuffle=True, device=CPU)
    for x, y, _ in adapter:
        assert torch.equal(x.long(), y)


def test_adapter_refuses_batch_size_with_a_dataloader():
    loader = DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8)), batch_size=4)
    with pytest.raises(ValueError, match="`batch_size` cannot be used with a DataLoader"):
        da.get_data_adapter(loader, batch_size=64, device=CPU)


def test_adapter_refuses_batch_size_with_a_generator():
    with pytest.raises(ValueError, match="`batch_size` cannot be used with a generator"):
        da.get_data_adapter(iter([(torch.zeros(2), torch.zeros(2))]), batch_size=2, device=CPU)


def test_adapter_batches_a_dataset_with_batch_size():
    adapter = da.get_data_adapter(TensorDataset(torch.zeros(10, 2), torch.zeros(10)), batch_size=4, device=CPU)
    assert [b[0].shape[0] for b in adapter] == [4, 4, 2]


def test_adapter_refuses_y_with_a_dataloader():
    loader = DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8)), batch_size=4)
    with pytest.raises(ValueError, match="`y` cannot be passed separately"):
        da.get_data_adapter(loader, y=np.zeros(8), device=CPU)


def test_class_weight_to_sample_weight_uses_each_sample_class():
    weights = da.class_weight_to_sample_weight(torch.tensor([0, 1, 1, 2]), {0: 1.0, 1: 2.0, 2: 0.5})
    assert weights.tolist() == [1.0, 2.0, 2.0, 0.5]


def test_class_weight_refuses_unknown_classes():
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        da.class_weight_to_sample_weight(torch.tensor([0, 1]), {0: 1.0, 7: 2.0})


@pytest.mark.parametrize("batch, expected", [
    ("x", ("x", None, None)), (("x",), ("x", None, None)), (["x", "y"], ("x", "y", None)),
    (("x", "y", "w"), ("x", "y", "w")),
])
def test_unpack_x_y_sample_weight_follows_keras(batch, expected):
    assert da.unpack_x_y_sample_weight(batch) == expected
