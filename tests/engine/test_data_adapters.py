import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torchcompile.engine import array_adapter
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


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_y", [False, True])
def test_array_adapter_shuffles_flat_arrays_with_rows_aligned(weighted, with_y):
    n = 23
    y = np.arange(n) if with_y else None
    sw = np.arange(n, dtype=np.float32) if weighted else None
    adapter = da.get_data_adapter(np.arange(n, dtype=np.float32), y, sw, batch_size=5, shuffle=True, device=CPU)
    seen = []
    for x_b, y_b, sw_b in adapter:
        assert (y_b is None) is not with_y and (sw_b is None) is not weighted
        assert y_b is None or torch.equal(x_b.long(), y_b)
        assert sw_b is None or torch.equal(x_b, sw_b)
        seen += x_b.long().tolist()
    assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("chunk_batches", [1, 3, 8])
def test_array_adapter_chunked_gathers_give_the_batches_of_one_gather_per_batch(chunk_batches, monkeypatch):
    monkeypatch.setattr(array_adapter, "CHUNK_BATCHES", chunk_batches)
    x, y = np.arange(46, dtype=np.float32).reshape(23, 2), np.arange(23)
    adapter = da.get_data_adapter(x, y, batch_size=5, shuffle=True, device=CPU)
    torch.manual_seed(3)
    batches = list(adapter)
    torch.manual_seed(3)
    order = torch.randperm(23)
    assert len(batches) == 5 and [b[0].shape[0] for b in batches] == [5, 5, 5, 5, 3]
    for i, (x_b, y_b, sw_b) in enumerate(batches):
        index = order[5 * i : 5 * i + 5]
        assert torch.equal(x_b, torch.from_numpy(x)[index]) and torch.equal(y_b, torch.from_numpy(y)[index])
        assert sw_b is None


@pytest.mark.parametrize("chunk_batches", [1, 3, 8])
def test_array_adapter_chunked_gathers_of_dict_inputs_give_the_batches_of_one_gather_per_batch(
    chunk_batches, monkeypatch
):
    monkeypatch.setattr(array_adapter, "CHUNK_BATCHES", chunk_batches)
    x = {"a": np.arange(46, dtype=np.float32).reshape(23, 2), "b": np.arange(23, dtype=np.float32)}
    y, sw = np.arange(23), np.arange(23, dtype=np.float32) / 2
    adapter = da.get_data_adapter(x, y, sw, batch_size=5, shuffle=True, device=CPU)
    torch.manual_seed(3)
    batches = list(adapter)
    torch.manual_seed(3)
    order = torch.randperm(23)
    assert [b[0]["a"].shape[0] for b in batches] == [5, 5, 5, 5, 3]
    for i, (x_b, y_b, sw_b) in enumerate(batches):
        index = order[5 * i : 5 * i + 5]
        assert list(x_b) == ["a", "b"]
        assert torch.equal(x_b["a"], torch.from_numpy(x["a"])[index])
        assert torch.equal(x_b["b"], torch.from_numpy(x["b"])[index])
        assert torch.equal(y_b, torch.from_numpy(y)[index]) and torch.equal(sw_b, torch.from_numpy(sw)[index])


def test_array_adapter_chunks_stay_small_for_large_rows(monkeypatch):
    monkeypatch.setattr(array_adapter, "CHUNK_BYTES", 4 * 2 * 8)  # two batches of 4 rows of 2 float32
    x = torch.arange(32.0).reshape(16, 2)
    batches = [b[0] for b in da.get_data_adapter(x, batch_size=4, shuffle=True, device=CPU)]
    bases = {id(b._base) for b in batches}
    assert len(bases) == 2 and sorted(torch.cat(batches)[:, 0].tolist()) == list(range(0, 32, 2))


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


@pytest.mark.parametrize(
    "batch, expected",
    [
        ("x", ("x", None, None)),
        (("x",), ("x", None, None)),
        (["x", "y"], ("x", "y", None)),
        (("x", "y", "w"), ("x", "y", "w")),
    ],
)
def test_unpack_x_y_sample_weight_follows_keras(batch, expected):
    assert da.unpack_x_y_sample_weight(batch) == expected


# ------------------------------------------------------------------ conversion
@pytest.mark.parametrize(
    "x, expected",
    [
        (np.zeros((2, 3)), True),
        (torch.zeros(2), True),
        ([1.0, 2.0], True),
        ([[1, 2], [3, 4]], True),
        ((np.zeros(2), [1.0, 2.0]), True),
        ({"a": np.zeros(2)}, True),
        ([np.zeros(2), torch.zeros(2)], True),
        ([], False),
        ({}, False),
        ("abc", False),
        (iter([]), False),
        ((1.0, 2.0), False),
    ],
)
def test_is_array_like_follows_the_documented_rule(x, expected):
    assert da.is_array_like(x) is expected


def test_to_tensors_makes_one_array_of_a_nested_number_list():
    assert da.to_tensors([[1, 2, 3], [4, 5, 6]]).shape == (2, 3)


@pytest.mark.parametrize("container", [tuple, list])
def test_to_tensors_keeps_a_structure_of_number_lists(container):
    converted = da.to_tensors(container([np.zeros(3), [1.0, 2.0, 3.0]]))
    assert type(converted) is container and [t.shape for t in converted] == [(3,), (3,)]


def test_to_tensors_converts_dict_values_and_keeps_keys():
    converted = da.to_tensors({"b": np.zeros((2, 1)), "a": [1, 2]})
    assert list(converted) == ["b", "a"] and converted["b"].dtype == torch.float32


@pytest.mark.parametrize(
    "array, dtype",
    [
        (np.zeros(3, dtype=np.int64), torch.int64),
        (torch.zeros(3, dtype=torch.float64), torch.float32),
        (np.zeros(3, dtype=np.float16), torch.float32),  # Keras casts every non-floatx float too
        (np.zeros(3, dtype=bool), torch.bool),
    ],
)
def test_to_tensors_casts_floats_to_float32_and_keeps_other_dtypes(array, dtype):
    assert da.to_tensors(array).dtype == dtype


def test_to_tensors_copies_non_contiguous_and_read_only_arrays():
    array = np.zeros((4, 3), dtype=np.float32)
    array.setflags(write=False)
    assert da.to_tensors(array).is_contiguous() and da.to_tensors(np.zeros((3, 4), np.float32).T).is_contiguous()


def test_to_tensors_does_not_copy_tensors():
    tensor = torch.zeros(4, 3)
    assert da.to_tensors(tensor).data_ptr() == tensor.data_ptr()


def test_to_tensors_refuses_ragged_lists():
    with pytest.raises(ValueError, match="rectangular"):
        da.to_tensors([[1.0, 2.0], [3.0]])


def test_to_tensors_refuses_strings():
    with pytest.raises(TypeError, match="must hold numbers"):
        da.to_tensors(np.array(["a", "b"]))


@pytest.mark.parametrize("x", [[np.zeros((10, 2)), np.zeros((9, 2))], {"a": np.zeros(10), "b": np.zeros(8)}])
def test_check_lengths_refuses_inputs_of_different_lengths(x):
    with pytest.raises(ValueError, match="different numbers of samples"):
        da.check_lengths(da.to_tensors(x), None, None)


def test_check_lengths_refuses_a_sample_weight_of_another_length():
    with pytest.raises(ValueError, match="sample_weight has 3"):
        da.check_lengths(torch.zeros(4, 2), torch.zeros(4), torch.ones(3))


def test_num_samples_refuses_scalars():
    with pytest.raises(ValueError, match="contains a scalar"):
        da.num_samples("y", torch.tensor(1.0))


def test_train_validation_split_slices_every_structure_without_copying():
    x = {"a": torch.arange(10.0), "b": torch.zeros(10, 2)}
    (train, _, _), (val, _, _) = da.train_validation_split((x, None, None), 0.2)
    assert train["b"].shape == (8, 2) and val["a"].tolist() == [8.0, 9.0]
    assert train["a"].data_ptr() == x["a"].data_ptr()


@pytest.mark.parametrize("split", [0.0, 1.0, 0.95])
def test_train_validation_split_refuses_splits_leaving_a_side_empty(split):
    with pytest.raises(ValueError, match="validation_split"):
        da.train_validation_split((torch.zeros(10), None, None), split)


# ------------------------------------------------------------------ class_weight
def test_class_weight_uses_the_argmax_of_one_hot_targets():
    one_hot = torch.eye(3)[[2, 0, 1]]
    assert da.class_weight_to_sample_weight(one_hot, {2: 5.0}).tolist() == [5.0, 1.0, 1.0]


def test_class_weight_rounds_binary_probability_targets():
    y = torch.tensor([[0.9], [0.1], [1.0]])
    assert da.class_weight_to_sample_weight(y, {1: 4.0}).tolist() == [4.0, 1.0, 4.0]


def test_class_weight_leaves_unnamed_and_negative_labels_at_one():
    y = torch.tensor([0, 1, 2, -1])
    assert da.class_weight_to_sample_weight(y, {1: 3.0}).tolist() == [1.0, 3.0, 1.0, 1.0]


def test_class_weight_refuses_classes_beyond_the_one_hot_width():
    with pytest.raises(ValueError, match=r"classes \[3\] that do not exist: y has classes 0..2"):
        da.class_weight_to_sample_weight(torch.eye(3), {3: 2.0})


def test_class_weight_accepts_the_other_binary_class_when_absent():
    assert da.class_weight_to_sample_weight(torch.zeros(3), {1: 2.0}).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "class_weight, error",
    [([1.0, 2.0], TypeError), ({-1: 1.0}, ValueError), ({"cat": 1.0}, ValueError), ({True: 1.0}, ValueError)],
)
def test_check_class_weight_refuses_non_index_keys(class_weight, error):
    with pytest.raises(error, match="class_weight"):
        da.check_class_weight(class_weight)


def test_class_weight_refuses_several_target_arrays():
    with pytest.raises(ValueError, match="single target array"):
        da.class_weight_to_sample_weight((torch.zeros(2), torch.zeros(2)), {0: 1.0})


def test_adapter_refuses_class_weight_and_sample_weight_together():
    with pytest.raises(ValueError, match="either `sample_weight` or `class_weight`"):
        da.get_data_adapter(np.zeros((4, 1)), np.zeros(4), np.ones(4), class_weight={0: 1.0})


def test_adapter_turns_class_weight_into_sample_weights():
    adapter = da.get_data_adapter(np.zeros((4, 1)), np.array([0, 1, 1, 0]), class_weight={1: 2.0}, device=CPU)
    assert next(iter(adapter))[2].tolist() == [1.0, 2.0, 2.0, 1.0]


# ------------------------------------------------------------------ arrays
def test_adapter_derives_the_batch_size_from_steps_as_keras():
    assert da.get_data_adapter(np.zeros((10, 1)), steps=3, device=CPU).batch_size == 4


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_adapter_refuses_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="positive integer"):
        da.get_data_adapter(np.zeros((4, 1)), batch_size=batch_size)


def test_array_adapter_yields_copies_in_order_without_shuffle():
    x = torch.arange(8.0).reshape(8, 1)
    first = next(iter(da.get_data_adapter(x, batch_size=4, device=CPU)))[0]
    assert first.data_ptr() != x.data_ptr() and first.flatten().tolist() == [0, 1, 2, 3]


def test_array_adapter_host_fallback_gathers_the_same_batches(monkeypatch):
    monkeypatch.setattr(array_adapter, "_fits_on_device", lambda data, device: False)
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10)
    adapter = da.get_data_adapter(x, y, batch_size=4, shuffle=True, device=CPU)
    batches = list(adapter)
    assert not adapter.on_device and [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    assert all(torch.equal(bx, x[by]) for bx, by, _ in batches)


def test_fits_on_device_is_always_true_off_cuda():
    assert array_adapter._fits_on_device((torch.zeros(10),), CPU)


@pytest.mark.gpu
def test_array_adapter_moves_arrays_to_cuda_once_and_shuffles_there():
    cuda = torch.device("cuda")
    adapter = da.get_data_adapter(np.arange(100.0), np.arange(100), batch_size=10, shuffle=True, device=cuda)
    x, y, _ = next(iter(adapter))
    assert adapter.on_device and x.is_cuda and y.is_cuda and torch.equal(x.long(), y)


@pytest.mark.gpu
def test_array_adapter_host_fallback_yields_pinned_batches(monkeypatch):
    monkeypatch.setattr(da, "DEVICE_MEMORY_SHARE", 0.0)
    adapter = da.get_data_adapter(
        np.arange(100.0), np.arange(100), batch_size=10, shuffle=True, device=torch.device("cuda")
    )
    x, y, _ = next(iter(adapter))
    assert not adapter.on_device and x.is_pinned() and y.is_pinned() and torch.equal(x.long(), y)


# ------------------------------------------------------------------ iterables
def _numpy_batches(n):
    for i in range(n):
        yield np.full((2, 3), float(i)), np.zeros((2, 1))


def test_iterable_adapter_turns_numpy_batches_into_float32_tensors():
    x, y, sw = next(iter(da.get_data_adapter(_numpy_batches(1), device=CPU)))
    assert x.dtype == torch.float32 and y.dtype == torch.float32 and sw is None


def test_iterable_adapter_reads_the_first_batch_up_front_without_losing_it():
    adapter = da.get_data_adapter(_numpy_batches(3), device=CPU)
    assert [b[0][0, 0].item() for b in adapter] == [0.0, 1.0, 2.0]


def test_iterable_adapter_refuses_an_empty_generator():
    with pytest.raises(ValueError, match="generator yielded no batch"):
        da.get_data_adapter(iter([]), device=CPU)


def test_iterable_adapter_refuses_a_batch_of_mismatched_lengths():
    adapter = da.get_data_adapter(iter([(torch.zeros(4, 2), torch.zeros(3))]), device=CPU)
    with pytest.raises(ValueError, match="x has 4, y has 3"):
        next(iter(adapter))


class _Batches:
    """Re-iterable batches (a list of batches would read as a structure of arrays)."""

    def __init__(self, *batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def test_iterable_adapter_applies_class_weight_per_batch():
    batches = _Batches((torch.zeros(3, 1), torch.tensor([0, 1, 0])), (torch.zeros(2, 1), torch.tensor([0, 0])))
    adapter = da.get_data_adapter(batches, class_weight={1: 4.0}, device=CPU)
    assert [b[2].tolist() for b in adapter] == [[1.0, 4.0, 1.0], [1.0, 1.0]]


def test_iterable_adapter_refuses_class_weight_with_yielded_sample_weights():
    adapter = da.get_data_adapter(
        _Batches((torch.zeros(2, 1), torch.zeros(2), torch.ones(2))), class_weight={0: 2.0}, device=CPU
    )
    with pytest.raises(ValueError, match="yields sample weights and `class_weight`"):
        next(iter(adapter))


def test_adapter_shuffles_a_map_style_dataset_it_batches():
    adapter = da.get_data_adapter(TensorDataset(torch.arange(100)), batch_size=100, shuffle=True, device=CPU)
    batch = next(iter(adapter))[0]
    assert sorted(batch.tolist()) == list(range(100)) and batch.tolist() != list(range(100))


def test_adapter_uses_a_dataloader_as_is():
    loader = DataLoader(TensorDataset(torch.zeros(10, 2), torch.zeros(10)), batch_size=3, drop_last=True)
    adapter = da.get_data_adapter(loader, device=CPU)
    assert adapter.data is loader and adapter.num_batches == 3


@pytest.mark.parametrize("x", [TensorDataset(torch.zeros(0, 2)), []])
def test_adapter_refuses_empty_data(x):
    with pytest.raises(ValueError, match="empty"):
        da.get_data_adapter(x, device=CPU)


def test_adapter_refuses_unrecognised_input():
    with pytest.raises(TypeError, match="Unrecognised input data"):
        da.get_data_adapter(object(), device=CPU)


@pytest.mark.parametrize(
    "x, expected",
    [
        (np.zeros(2), True),
        (TensorDataset(torch.zeros(2)), True),
        (DataLoader(TensorDataset(torch.zeros(2))), False),
        (iter([]), False),
    ],
)
def test_accepts_batch_size_only_for_data_batched_here(x, expected):
    assert da.accepts_batch_size(x) is expected


def test_array_adapter_host_fallback_slices_in_order_without_shuffle(monkeypatch):
    monkeypatch.setattr(array_adapter, "_fits_on_device", lambda data, device: False)
    adapter = da.get_data_adapter(torch.arange(10.0), torch.arange(10), batch_size=4, device=CPU)
    assert [b[1].tolist() for b in adapter] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("weights", [np.ones(4, dtype=np.int64), [1, 1, 1, 1], np.ones(4, dtype=bool)])
def test_adapter_makes_sample_weights_float(weights):
    adapter = da.get_data_adapter(np.zeros((4, 1)), np.zeros(4), weights, device=CPU)
    assert next(iter(adapter))[2].dtype == torch.float32


# ------------------------------------------------------------------ the caller's data is never written through
def _batches(x, **kwargs):
    return [batch[0] for batch in da.get_data_adapter(x, batch_size=4, device=CPU, **kwargs)]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("kind", ["numpy", "tensor"])
def test_array_adapter_batches_are_new_memory(kind, shuffle):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    source = x if kind == "numpy" else torch.from_numpy(x)
    for batch in _batches(source, shuffle=shuffle):
        batch.zero_()
    assert x.sum() == 66


def test_array_adapter_host_fallback_batches_are_new_memory(monkeypatch):
    monkeypatch.setattr(array_adapter, "_fits_on_device", lambda data, device: False)
    x = torch.arange(12.0).reshape(6, 2)
    for batch in _batches(x):
        batch.zero_()
    assert x.sum() == 66


def test_array_adapter_batches_are_detached_from_the_callers_graph():
    x = torch.arange(12.0).reshape(6, 2).requires_grad_()
    batch = _batches(x, shuffle=True)[0]
    assert not batch.requires_grad and batch.grad_fn is None


def test_generator_batches_are_new_memory():
    x = np.ones((4, 2), dtype=np.float32)
    t = torch.ones(4, 2)
    for bx, by, _ in da.get_data_adapter(iter([(x, t)]), device=CPU):
        bx.zero_(), by.zero_()
    assert x.sum() == 8 and t.sum() == 8


def test_dict_batch_with_labels_key_splits_into_inputs_and_labels():
    x = {"input_ids": np.arange(8).reshape(4, 2), "labels": np.arange(4)}
    bx, by, _ = next(iter(da.get_data_adapter(x, batch_size=4, device=CPU)))
    assert list(bx) == ["input_ids"] and by.tolist() == [0, 1, 2, 3]


def test_dict_batch_with_label_key_from_a_dataloader_splits_too():
    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"features": torch.full((2,), float(i)), "label": i}

    bx, by, _ = next(iter(da.get_data_adapter(DataLoader(Rows(), batch_size=4), device=CPU)))
    assert list(bx) == ["features"] and by.tolist() == [0, 1, 2, 3]


def test_dict_x_with_labels_key_keeps_it_when_y_is_given():
    x = {"a": np.zeros((2, 1)), "labels": np.zeros((2, 1))}
    bx, by, _ = next(iter(da.get_data_adapter(x, np.ones(2), batch_size=2, device=CPU)))
    assert list(bx) == ["a", "labels"] and by.tolist() == [1.0, 1.0]


# ------------------------------------------------------------------ float inputs follow the module's dtype
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float32])
def test_float_inputs_follow_float_dtype(dtype):
    adapter = da.get_data_adapter(np.zeros((4, 2)), np.zeros(4, dtype=np.float32), batch_size=4, float_dtype=dtype)
    x, y, _ = next(iter(adapter))
    assert x.dtype == dtype and y.dtype == dtype


def test_float_dtype_keeps_integer_inputs():
    x, y, _ = next(iter(da.get_data_adapter(np.zeros((4, 2)), np.arange(4), float_dtype=torch.float64)))
    assert x.dtype == torch.float64 and y.dtype == torch.int64


def test_float_dtype_reaches_dataloader_batches():
    loader = DataLoader(TensorDataset(torch.zeros(4, 2), torch.zeros(4)), batch_size=2)
    x, y, _ = next(iter(da.get_data_adapter(loader, float_dtype=torch.float64)))
    assert x.dtype == y.dtype == torch.float64


def test_float64_arrays_are_not_copied_for_a_float64_module():
    x = np.zeros((4, 2))
    assert da.to_tensors(x, torch.float64).data_ptr() == x.ctypes.data


def test_integer_sample_weights_follow_a_float64_module():
    adapter = da.get_data_adapter(np.zeros((4, 2)), np.zeros(4), np.ones(4, dtype=int), float_dtype=torch.float64)
    assert next(iter(adapter))[2].dtype == torch.float64


def test_float_dtype_must_be_a_floating_torch_dtype():
    with pytest.raises(ValueError, match="`float_dtype` must be a floating torch.dtype"):
        da.get_data_adapter(np.zeros((4, 2)), float_dtype=torch.int64)


# ------------------------------------------------------------------ a DataLoader and fit's batch_size
def test_dataloader_accepts_its_own_batch_size():
    loader = DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8)), batch_size=4)
    assert da.get_data_adapter(loader, batch_size=4, device=CPU).num_batches == 2


def test_dataloader_refuses_a_different_batch_size_naming_both():
    loader = DataLoader(TensorDataset(torch.zeros(8, 2), torch.zeros(8)), batch_size=4)
    with pytest.raises(ValueError, match=r"batch_size=64 but the DataLoader's batch size is 4"):
        da.get_data_adapter(loader, batch_size=64, device=CPU)


# ------------------------------------------------------------------ a Dataset whose items are whole batches
class BatchItems(torch.utils.data.Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return torch.zeros(8, 5), torch.zeros(8, dtype=torch.long)


def test_dataset_of_whole_batches_warns_and_names_pydataset():
    with pytest.warns(UserWarning, match="look like whole batches.*tc.utils.PyDataset"):
        da.get_data_adapter(BatchItems(), device=CPU)


def test_dataset_of_samples_does_not_warn(recwarn):
    da.get_data_adapter(TensorDataset(torch.zeros(8, 5), torch.zeros(8)), device=CPU)
    assert not [w for w in recwarn if "whole batches" in str(w.message)]


def test_collator_style_mapping_batch_from_a_dataloader_splits_its_labels():
    from collections import UserDict  # what a Hugging Face DataCollator returns (BatchEncoding)

    def collate(rows):
        return UserDict({"input_ids": torch.stack([r[0] for r in rows]), "labels": torch.stack([r[1] for r in rows])})

    loader = DataLoader(TensorDataset(torch.arange(8).reshape(4, 2), torch.arange(4)), batch_size=2, collate_fn=collate)
    x, y, _ = next(iter(da.get_data_adapter(loader, device=CPU)))
    assert type(x) is dict and list(x) == ["input_ids"] and y.tolist() == [0, 1]


def test_array_adapter_chunked_gathers_keep_nested_inputs_aligned(monkeypatch):
    monkeypatch.setattr(array_adapter, "CHUNK_BATCHES", 3)
    a, b = np.arange(23, dtype=np.float32), np.arange(23, dtype=np.float32) * 10
    x = [a, {"b": b}]  # not a flat dict: rebuilt through the structure
    batches = list(da.get_data_adapter(x, np.arange(23), batch_size=5, shuffle=True, device=CPU))
    seen = []
    for (a_b, nested), y_b, _ in batches:
        assert torch.equal(nested["b"], a_b * 10) and torch.equal(y_b.float(), a_b)
        seen += a_b.long().tolist()
    assert sorted(seen) == list(range(23))
