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
