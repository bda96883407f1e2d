import pytest
import torch

from torchcompile.engine import data_adapters as da
from torchcompile.engine.epoch_iterator import EpochIterator

CPU = torch.device("cpu")


def _generator(n):
    for i in range(n):
        yield torch.full((2, 1), float(i)), torch.zeros(2)


def test_epoch_iterator_runs_all_batches_without_steps():
    iterator = EpochIterator(da.get_data_adapter(torch.zeros(10, 1), torch.zeros(10), batch_size=3, device=CPU))
    assert [step for step, _ in iterator.enumerate_epoch()] == [0, 1, 2, 3]


def test_epoch_iterator_carries_a_generator_across_epochs_with_steps():
    iterator = EpochIterator(da.get_data_adapter(_generator(6), device=CPU), steps_per_epoch=3)
    first = [batch[0][0, 0].item() for _, batch in iterator.enumerate_epoch()]
    second = [batch[0][0, 0].item() for _, batch in iterator.enumerate_epoch()]
    assert first == [0, 1, 2] and second == [3, 4, 5]


def test_epoch_iterator_warns_when_data_runs_out():
    iterator = EpochIterator(da.get_data_adapter(_generator(2), device=CPU), steps_per_epoch=3)
    with pytest.warns(UserWarning, match="ran out of data"):
        steps = list(iterator.enumerate_epoch())
    assert len(steps) == 2 and iterator.ran_out_of_data


def test_epoch_iterator_refuses_a_non_positive_step_count():
    with pytest.raises(ValueError, match="positive integer"):
        EpochIterator(da.get_data_adapter(torch.zeros(4, 1), device=CPU), steps_per_epoch=0)


class _Stream(torch.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(torch.arange(float(self.n)).reshape(self.n, 1))


def _first_values(iterator):
    return [batch[0][0, 0].item() for _, batch in iterator.enumerate_epoch()]


def _arrays(n=8, batch_size=2):
    return da.get_data_adapter(torch.arange(float(n)).reshape(n, 1), batch_size=batch_size, device=CPU)


def test_epoch_iterator_carries_an_array_pass_across_epochs_with_steps():
    iterator = EpochIterator(_arrays(), steps_per_epoch=2)
    assert [_first_values(iterator) for _ in range(3)] == [[0, 2], [4, 6], [0, 2]]


def test_epoch_iterator_ends_an_epoch_early_when_arrays_run_out_and_goes_on():
    iterator = EpochIterator(_arrays(), steps_per_epoch=3)
    first = _first_values(iterator)
    with pytest.warns(UserWarning, match="ran out of data"):
        second = _first_values(iterator)
    assert (first, second, _first_values(iterator)) == ([0, 2, 4], [6], [0, 2, 4])
    assert not iterator.ran_out_of_data  # Keras 3: the next epoch starts a fresh pass


def test_epoch_iterator_without_carry_over_starts_each_epoch_afresh():
    iterator = EpochIterator(_arrays(), steps_per_epoch=2, carry_over=False)
    assert _first_values(iterator) == _first_values(iterator) == [0, 2]


def test_epoch_iterator_reads_an_iterable_dataset_without_length_again_each_epoch():
    iterator = EpochIterator(da.get_data_adapter(_Stream(6), batch_size=4, device=CPU))
    assert iterator.num_steps is None and _first_values(iterator) == _first_values(iterator) == [0, 4]


def test_epoch_iterator_warns_and_stops_on_an_empty_iterable_dataset():
    iterator = EpochIterator(da.get_data_adapter(_Stream(0), device=CPU))
    with pytest.warns(UserWarning, match="ran out of data"):
        assert list(iterator.enumerate_epoch()) == []
    assert iterator.ran_out_of_data


def test_epoch_iterator_refuses_a_generator_read_twice_without_steps():
    iterator = EpochIterator(da.get_data_adapter(_generator(3), device=CPU))
    with pytest.raises(ValueError, match="can be read only once.*Received: steps_per_epoch=None"):
        iterator.check_passes(2, "steps_per_epoch")


@pytest.mark.parametrize("steps, passes, source", [(None, 1, "generator"), (2, 5, "generator"), (None, 5, "arrays")])
def test_epoch_iterator_accepts_passes_it_can_serve(steps, passes, source):
    adapter = da.get_data_adapter(_generator(3), device=CPU) if source == "generator" else _arrays()
    EpochIterator(adapter, steps).check_passes(passes, "steps_per_epoch")


@pytest.mark.parametrize("steps", [1.5, True, -2])
def test_epoch_iterator_refuses_steps_that_are_not_positive_integers(steps):
    with pytest.raises(ValueError, match="positive integer"):
        EpochIterator(_arrays(), steps_per_epoch=steps)
