# SPDX-License-Identifier: Apache-2.0
"""engine/distributed.py without a process group: sharding, padding, batch-size split, errors,
assembling gathered predictions. The processes themselves: tests/integration/test_distributed.py."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from torchcompile.engine import data_adapters, distributed
from torchcompile.engine.distributed import Sharding


def local_batches(n, batch_size, rank, world_size, training, shuffle=False):
    return [b.tolist() for b in Sharding(rank, world_size, training).batches(n, batch_size, shuffle)]


@pytest.mark.parametrize("n, world_size, batch_size", [(12, 2, 4), (13, 2, 4), (10, 4, 8), (7, 3, 6), (2, 4, 4)])
def test_sharding_training_epoch_equals_distributed_sampler(n, world_size, batch_size):
    for rank in range(world_size):
        ours = [i for batch in local_batches(n, batch_size, rank, world_size, training=True) for i in batch]
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False)
        assert ours == list(sampler)


@pytest.mark.parametrize("n, world_size, batch_size", [(12, 2, 4), (13, 2, 4), (10, 4, 8), (7, 3, 6)])
def test_sharding_training_batches_together_are_the_global_batches(n, world_size, batch_size):
    shares = [local_batches(n, batch_size, r, world_size, training=True) for r in range(world_size)]
    assert len({len(s) for s in shares}) == 1  # the same number of steps everywhere (DDP needs it)
    for k, start in enumerate(range(0, n, batch_size)):
        together = {i for share in shares for i in share[k]}
        batch = set(range(start, min(start + batch_size, n)))
        assert batch <= together and together - batch <= set(range(world_size))  # padding: the first samples
        assert len({len(share[k]) for share in shares}) == 1  # padded to equal sizes


@pytest.mark.parametrize("n, world_size, batch_size", [(13, 2, 4), (10, 4, 8), (5, 4, 4), (9, 3, 3)])
def test_sharding_evaluation_counts_every_sample_once(n, world_size, batch_size):
    taken = [
        i for r in range(world_size) for batch in local_batches(n, batch_size, r, world_size, False) for i in batch
    ]
    assert sorted(taken) == list(range(n))


def test_sharding_evaluation_joins_a_last_batch_smaller_than_the_processes_to_the_one_before():
    # 9 samples, global batch 4, 4 processes: the last batch (one sample) joins the second, so every
    # process runs the same steps (a sharded model's forward is a collective) and none is empty.
    shares = [local_batches(9, 4, r, 4, training=False) for r in range(4)]
    assert shares == [[[0], [4, 8]], [[1], [5]], [[2], [6]], [[3], [7]]]
    assert sorted(i for share in shares for batch in share for i in batch) == list(range(9))


def test_sharding_evaluation_batch_sampler_counts_the_joined_batches():
    assert len(Sharding(0, 4, training=False).batch_sampler(9, 4, shuffle=False)) == 2
    assert len(Sharding(0, 4, training=True).batch_sampler(9, 4, shuffle=False)) == 3


def test_sharding_records_the_indices_of_an_evaluation_pass():
    sharding = Sharding(1, 2, training=False)
    list(sharding.batches(7, 4, shuffle=False))
    assert torch.cat(sharding.indices).tolist() == [1, 3, 5]


def test_sharding_evaluation_with_fewer_samples_than_processes_is_an_error():
    with pytest.raises(ValueError, match=r"3 processes.*Received: 2 samples, world_size=3"):
        local_batches(2, 3, 0, 3, training=False)


def test_sharding_shuffled_order_is_a_permutation_drawn_from_torch_rng():
    torch.manual_seed(3)
    first = local_batches(10, 4, 0, 1, training=True, shuffle=True)
    torch.manual_seed(3)
    again = local_batches(10, 4, 0, 1, training=True, shuffle=True)
    assert first == again
    assert sorted(i for batch in first for i in batch) == list(range(10))
    assert first != local_batches(10, 4, 0, 1, training=True, shuffle=True)  # a new order each pass


def test_shard_batch_pads_from_the_start_of_the_order():
    order = torch.tensor([5, 6, 7, 8, 9])
    shares = [distributed.shard_batch(order, 4, 4, r, 3, pad=True).tolist() for r in range(3)]
    assert shares == [[9], [5], [6]]


@pytest.mark.parametrize("batch_size, world_size", [(32, 2), (30, 3), (8, 8)])
def test_check_batch_size_accepts_a_multiple_of_the_world_size(batch_size, world_size):
    distributed.check_batch_size(batch_size, world_size)


def test_check_batch_size_refuses_an_uneven_split_naming_the_fix():
    with pytest.raises(
        ValueError,
        match=r"global batch.*multiple of 3; pass batch_size=30 or 33\. "
        r"Received: batch_size=32, world_size=3",
    ):
        distributed.check_batch_size(32, 3)


def test_check_batch_size_names_the_default():
    with pytest.raises(ValueError, match=r"Received: batch_size=32 \(the default\), world_size=3"):
        distributed.check_batch_size(32, 3, default=True)


def test_sharding_refuses_a_batch_size_derived_from_steps_that_does_not_split():
    with pytest.raises(ValueError, match=r"multiple of 2.*Received: batch_size=5, world_size=2"):
        local_batches(10, 5, 0, 2, training=False)


def test_sharding_for_is_none_in_one_process():
    assert distributed.sharding_for(np.zeros((4, 2)), 3, None, training=True) is None


def test_array_adapter_yields_this_process_share():
    x = torch.arange(11.0).reshape(11, 1)
    adapter = data_adapters.get_data_adapter(x, x, batch_size=4, sharding=Sharding(1, 2, training=True))
    assert [batch[0].flatten().tolist() for batch in adapter] == [[1.0, 3.0], [5.0, 7.0], [9.0, 0.0]]


def test_dataset_adapter_yields_this_process_share():
    x = torch.arange(10.0).reshape(10, 1)
    adapter = data_adapters.get_data_adapter(TensorDataset(x, x), batch_size=4, sharding=Sharding(0, 2, training=False))
    assert [batch[0].flatten().tolist() for batch in adapter] == [[0.0, 2.0], [4.0, 6.0], [8.0]]
    assert adapter.num_batches == 3


def test_dataloader_adapter_is_not_resharded():
    x = torch.arange(6.0).reshape(6, 1)
    adapter = data_adapters.get_data_adapter(
        DataLoader(TensorDataset(x, x), batch_size=3), sharding=Sharding(1, 2, training=True)
    )
    assert adapter.sharding is None
    assert [batch[0].flatten().tolist() for batch in adapter] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_assemble_puts_gathered_predictions_in_sample_order():
    parts = [
        (np.array([0, 2, 4]), {"a": np.array([[0.0], [2.0], [4.0]]), "b": (np.array([0, 20, 40]),)}),
        (np.array([1, 3]), {"a": np.array([[1.0], [3.0]]), "b": (np.array([10, 30]),)}),
    ]
    merged = distributed.assemble(parts)
    np.testing.assert_array_equal(merged["a"][:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(merged["b"][0], [0, 10, 20, 30, 40])


def test_setup_leaves_one_process_alone(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")


def test_setup_without_torchrun_variables_names_the_launcher(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        RuntimeError,
        match=r"RANK, MASTER_ADDR, MASTER_PORT are not set.*torchrun "
        r"--nproc_per_node=N.*Received: WORLD_SIZE=2",
    ):
        distributed.setup(torch.device("cpu"))


def test_end_epoch_in_one_process_changes_nothing():
    tracker = torch.tensor([3.0])
    metric = type("M", (), {"variables": [tracker]})()
    assert distributed.end_epoch(torch.nn.BatchNorm1d(2), [metric], True) is True
    assert tracker.tolist() == [3.0]


def test_wrap_in_one_process_is_none():
    assert distributed.wrap(torch.nn.Linear(2, 1), torch.device("cpu")) is None


def test_reshard_loader_in_one_process_returns_the_loader():
    loader = DataLoader(TensorDataset(torch.arange(6.0)), batch_size=3)
    assert distributed.reshard_loader(loader, training=True) is loader


def test_pass_sampler_takes_distributed_samplers_share_with_its_padding():
    for rank in range(3):
        ours = list(distributed.PassSampler(range(7), num_replicas=3, rank=rank, shuffle=False))
        assert ours == list(DistributedSampler(range(7), num_replicas=3, rank=rank, shuffle=False))


def test_pass_sampler_draws_a_new_order_each_pass_from_torch_rng():
    sampler = distributed.PassSampler(range(10), num_replicas=1, rank=0, shuffle=True)
    torch.manual_seed(1)
    first, second = list(sampler), list(sampler)
    torch.manual_seed(1)
    assert list(sampler) == first and first != second and sorted(first) == list(range(10))


def test_ddp_error_for_parameters_without_gradient_names_find_unused_parameters():
    import torch.distributed as dist

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk, self.branch = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)

        def forward(self, x, use_branch):
            return self.trunk(x) + (self.branch(x) if use_branch else 0)

    dist.init_process_group("gloo", store=dist.HashStore(), world_size=1, rank=0)
    try:
        ddp = distributed._DataParallel(Branchy())
        ddp(torch.ones(1, 2), use_branch=False).sum().backward()  # the branch gets no gradient
        with pytest.raises(RuntimeError, match=r"DataParallel\(find_unused_parameters=True\)"):
            ddp(torch.ones(1, 2), use_branch=True)
        allowed = distributed._DataParallel(Branchy(), find_unused_parameters=True)
        for use_branch in (False, True, False):
            allowed(torch.ones(1, 2), use_branch=use_branch).sum().backward()
    finally:
        dist.destroy_process_group()
