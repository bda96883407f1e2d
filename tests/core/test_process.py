# SPDX-License-Identifier: Apache-2.0
from torchcompile.core import process


def test_is_rank_zero_reads_torchrun_rank_before_the_group_exists(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert not process.is_rank_zero()
    monkeypatch.setenv("RANK", "0")
    assert process.is_rank_zero()


def test_is_distributed_is_false_without_a_process_group():
    assert not process.is_distributed()
