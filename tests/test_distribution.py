# SPDX-License-Identifier: Apache-2.0
"""tc.distribution: the public description of how a model spreads over processes."""

import pytest

import torchcompile as tc
from torchcompile import distribution


def test_short_names_resolve_to_their_classes():
    assert distribution.get("fsdp") == tc.distribution.FSDP()
    assert distribution.get("ddp") == distribution.get("data_parallel") == tc.distribution.DataParallel()
    assert distribution.get("FSDP") == tc.distribution.FSDP()


def test_an_instance_is_returned_as_is_and_none_is_the_global_one():
    fsdp = tc.distribution.FSDP(modules=["blocks.*"], reshard_after_forward=False)
    assert distribution.get(fsdp) is fsdp
    assert distribution.get(None) is None
    tc.distribution.set_distribution("fsdp")
    try:
        assert distribution.get(None) == tc.distribution.FSDP() == tc.distribution.distribution()
    finally:
        tc.distribution.set_distribution(None)
    assert distribution.get(None) is None


def test_an_unknown_distribution_names_the_choices():
    with pytest.raises(ValueError, match=r"'data_parallel' \(or 'ddp'\), 'fsdp'.*Received: distribution='zero3'"):
        distribution.get("zero3")


def test_fsdp_takes_one_module_spec_or_a_list():
    assert tc.distribution.FSDP(modules=tc.Model).modules == [tc.Model]
    assert tc.distribution.FSDP(modules="layers.*").modules == ["layers.*"]
    assert tc.distribution.FSDP(modules=[]).modules == []
    assert "FSDP(modules=None, reshard_after_forward=True" in repr(tc.distribution.FSDP())


def test_fsdp_refuses_an_unknown_mixed_precision_name():
    with pytest.raises(ValueError, match=r"'auto' \(from the dtype policy\), None or a .*MixedPrecisionPolicy"):
        tc.distribution.FSDP(mixed_precision="bf16")
