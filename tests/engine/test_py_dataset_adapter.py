# SPDX-License-Identifier: Apache-2.0
"""Keras' PyDataset contract: whole batches, never batched again (issue 15)."""

import math
import threading

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.engine import data_adapters as da

CPU = torch.device("cpu")


class Squares(tc.utils.PyDataset):
    """Batches of 4 rows ``(x, x**2)``; records the thread that made each batch and epoch calls."""

    def __init__(self, n=10, batch_size=4, **kwargs):
        super().__init__(**kwargs)
        self.x = np.arange(n, dtype=np.float32).reshape(n, 1)
        self.batch_size = batch_size
        self.threads, self.epochs_begun, self.epochs_ended = set(), 0, 0

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        self.threads.add(threading.get_ident())
        rows = self.x[i * self.batch_size : (i + 1) * self.batch_size]
        return rows, rows**2

    def on_epoch_begin(self):
        self.epochs_begun += 1

    def on_epoch_end(self):
        self.epochs_ended += 1


def _firsts(adapter):
    return [int(x[0, 0]) for x, _, _ in adapter]


def test_py_dataset_items_are_batches_not_batched_again():
    batches = list(da.get_data_adapter(Squares(), device=CPU))
    assert [tuple(x.shape) for x, _, _ in batches] == [(4, 1), (4, 1), (2, 1)]
    assert torch.equal(batches[0][1], batches[0][0] ** 2)


def test_py_dataset_len_is_the_number_of_batches():
    assert da.get_data_adapter(Squares(), device=CPU).num_batches == 3


def test_py_dataset_shuffle_shuffles_the_batch_order():
    torch.manual_seed(1)
    orders = {tuple(_firsts(da.get_data_adapter(Squares(n=40), shuffle=True))) for _ in range(3)}
    assert len(orders) > 1 and all(sorted(order) == list(range(0, 40, 4)) for order in orders)


def test_py_dataset_on_epoch_begin_and_end_run_around_each_pass():
    dataset = Squares()
    adapter = da.get_data_adapter(dataset, device=CPU)
    list(adapter), list(adapter)
    assert dataset.epochs_begun == 2 and dataset.epochs_ended == 2


def test_py_dataset_batches_are_new_memory():
    dataset = Squares()
    for x, _, _ in da.get_data_adapter(dataset, device=CPU):
        x.zero_()
    assert dataset.x.sum() == 45


def test_py_dataset_workers_read_in_threads_in_order():
    dataset = Squares(n=40, workers=3, max_queue_size=2)
    assert _firsts(da.get_data_adapter(dataset, device=CPU)) == list(range(0, 40, 4))
    assert threading.get_ident() not in dataset.threads


def test_py_dataset_multiprocessing_reads_in_worker_processes_in_order():
    dataset = Squares(n=16, workers=2, use_multiprocessing=True)
    assert _firsts(da.get_data_adapter(dataset, device=CPU)) == [0, 4, 8, 12]
    assert dataset.threads == set()  # __getitem__ never ran in this process


class Endless(tc.utils.PyDataset):
    @property
    def num_batches(self):
        return None

    def __getitem__(self, i):
        return np.full((2, 1), float(i), np.float32), np.zeros((2, 1), np.float32)


def test_endless_py_dataset_runs_with_steps():
    iterator = tc.engine.epoch_iterator.EpochIterator(da.get_data_adapter(Endless(), device=CPU), steps_per_epoch=3)
    assert [int(batch[0][0, 0]) for _, batch in iterator.enumerate_epoch()] == [0, 1, 2]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"workers": -1}, "workers must be an integer >= 0"),
        ({"max_queue_size": 0}, "max_queue_size must be a positive integer"),
        ({"use_multiprocessing": "yes"}, "use_multiprocessing must be True or False"),
    ],
)
def test_py_dataset_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        da.get_data_adapter(Squares(**settings), device=CPU)


@pytest.mark.parametrize("argument", ["y", "sample_weight", "batch_size"])
def test_py_dataset_refuses_arguments_it_would_ignore(argument):
    value = 8 if argument == "batch_size" else np.zeros(10)
    with pytest.raises(ValueError, match=f"`{argument}` cannot be .* a PyDataset"):
        da.get_data_adapter(Squares(), **{argument: value})


def test_py_dataset_without_len_is_refused_clearly():
    class NoLength(tc.utils.PyDataset):
        def __getitem__(self, i):
            return np.zeros((1, 1))

    with pytest.raises(ValueError, match="must implement __len__"):
        da.get_data_adapter(NoLength())


@pytest.mark.keras
def test_keras_py_dataset_subclass_is_accepted_as_is():
    keras = pytest.importorskip("tests.keras_oracle").keras

    class KerasSquares(keras.utils.PyDataset):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

        def __len__(self):
            return 3

        def __getitem__(self, i):
            x = np.full((4, 1), float(i), np.float32)
            return x, x**2

    model = tc.Model(torch.nn.Linear(1, 1), device="cpu")
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(KerasSquares(workers=2), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and model.predict(KerasSquares(), verbose=0).shape == (12, 1)
