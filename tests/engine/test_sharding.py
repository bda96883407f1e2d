# SPDX-License-Identifier: Apache-2.0
"""engine/sharding.py without a process group: which units FSDP shards, the mixed precision policy,
the one-process refusal. Sharded runs themselves: tests/integration/test_sharded.py."""

import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile import mixed_precision
from torchcompile.engine import distributed, sharding
from torchcompile.sharded_state import is_sharded, module_class


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(8, 32), nn.Linear(32, 8)


class Transformer(nn.Module):
    def __init__(self, blocks=3):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.layers = nn.ModuleList(Block() for _ in range(blocks))
        self.head = nn.Linear(8, 2)


def test_default_units_are_the_repeated_blocks_innermost_first():
    module = Transformer()
    assert sharding.units(module, None) == list(module.layers)[::-1]


def test_default_units_without_blocks_are_the_big_children():
    module = nn.Module()
    module.encoder, module.decoder, module.tiny = nn.Linear(50, 50), nn.Linear(50, 50), nn.Linear(2, 1)
    assert sharding.units(module, None) == [module.decoder, module.encoder]


def test_one_layer_has_no_units_but_the_root():
    assert sharding.units(nn.Linear(4, 2), None) == []


def test_named_units_by_class_name_pattern_or_object():
    module = Transformer()
    assert sharding.units(module, [Block]) == list(module.layers)[::-1]
    assert sharding.units(module, ["layers.1", "head"]) == [module.head, module.layers[1]]
    assert sharding.units(module, ["layers.*.up"]) == [m.up for m in module.layers][::-1]
    assert sharding.units(module, [module.embed]) == [module.embed]
    assert sharding.units(module, []) == []  # the root alone


def test_named_units_that_match_nothing_are_refused_with_the_names():
    with pytest.raises(ValueError, match=r"names no submodule of Transformer.*'embed', 'layers'"):
        sharding.units(Transformer(), ["encoder.*"])


def test_sharding_in_one_process_says_it_needs_torchrun():
    with pytest.raises(RuntimeError, match=r"needs several: launch the script with `torchrun --nproc_per_node=N"):
        sharding.shard(nn.Linear(2, 1), torch.device("cpu"), "fsdp")


def test_data_parallel_and_none_shard_nothing():
    module = nn.Linear(2, 1)
    for choice in (None, "ddp", tc.distribution.DataParallel(find_unused_parameters=True)):
        distributed.shard(module, torch.device("cpu"), choice)
    assert not is_sharded(module) and module_class(module) is nn.Linear
    sharding.check_compile(module, torch.optim.SGD(module.parameters()), cuda_graph=True)  # not sharded: nothing


@pytest.mark.parametrize(
    "policy, param_dtype", [("float32", None), ("mixed_bfloat16", torch.bfloat16), ("mixed_float16", torch.float16)]
)
def test_auto_mixed_precision_gathers_in_the_policys_compute_dtype(policy, param_dtype):
    mp, dtype = sharding._mp_policy("auto", mixed_precision.get(policy))
    assert dtype is param_dtype and mp.param_dtype is param_dtype
    assert mp.reduce_dtype is (torch.float32 if param_dtype else None)


def test_explicit_mixed_precision_policy_is_used_as_is():
    from torch.distributed.fsdp import MixedPrecisionPolicy

    given = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16)
    assert sharding._mp_policy(given, mixed_precision.get("float32")) == (given, torch.bfloat16)
    assert sharding._mp_policy(None, mixed_precision.get("mixed_bfloat16"))[1] is None
