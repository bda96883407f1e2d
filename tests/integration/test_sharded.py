# SPDX-License-Identifier: Apache-2.0
"""Sharded data parallel (``distribution="fsdp"``): two processes under torchrun on the CPU (gloo)
against the same script in one process (``distribution=None``).

One launch of ``sharded_worker.py`` (about 10 s) serves every test here.
``test_sharded_fit_matches_one_process_and_halves_the_bytes`` runs in the default suite; the rest
need ``TC_TEST_DISTRIBUTED=1``. The GPU test needs two CUDA devices (nccl).
"""

import os

import numpy as np
import pytest
import torch

import torchcompile as tc
from tests.integration import sharded_worker
from tests.integration.test_distributed import launch_two, max_difference

pytestmark = pytest.mark.slow
distributed = pytest.mark.distributed
WORKER = os.path.join(os.path.dirname(__file__), "sharded_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two sharded processes saved, and their output folder."""
    return launch_two(tmp_path_factory, WORKER)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same script in this one process, unsharded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sharded_worker.run(tmp_path_factory.mktemp("one_process"), sharded=False)
    finally:
        torch.set_num_threads(threads)


def plain_model(path) -> tc.Model:
    """A plain one-process model with the weights of ``path``."""
    model = tc.Model(sharded_worker.Tiny(), device="cpu")
    model.load_weights(str(path))
    return model


def test_sharded_fit_matches_one_process_and_halves_the_bytes(ranks, single):
    rank0, rank1, _ = ranks
    assert max_difference(rank0["arrays"]["weights"], rank1["arrays"]["weights"]) == 0.0
    assert max_difference(rank0["arrays"]["weights"], single["arrays"]["weights"]) < 1e-5
    for key, expected in single["arrays"]["history"].items():
        np.testing.assert_allclose(rank0["arrays"]["history"][key], expected, rtol=0, atol=1e-5)
    for result in (rank0, rank1):
        seen = result["arrays"]["inspect"]
        assert seen["dtensor"]  # really sharded during training
        # Each process holds half the parameter bytes (dim 0 split in two, give or take a row) and
        # Adam's two moments of its half.
        assert 0.45 < seen["param_bytes"] / seen["full_param_bytes"] < 0.55
        assert seen["optimizer_bytes"] == 2 * seen["param_bytes"]
    assert rank0["arrays"]["inspect"]["param_bytes"] + rank1["arrays"]["inspect"]["param_bytes"] >= 17932


@distributed
def test_sharded_evaluate_and_predict_match_one_process(ranks, single):
    for result in ranks[:2]:
        for key, value in single["arrays"]["evaluate"].items():
            assert result["arrays"]["evaluate"][key] == pytest.approx(value, abs=1e-5)
        np.testing.assert_allclose(result["arrays"]["predict"], single["arrays"]["predict"], atol=1e-5)
        # 9 samples in batches of 4: the last batch (one sample) joins the one before on every process
        np.testing.assert_allclose(result["arrays"]["predict_odd"], single["arrays"]["predict_odd"], atol=1e-5)
        assert result["arrays"]["predict_odd"].shape == (9, 3)


@distributed
def test_sharded_checkpoints_load_into_one_plain_process_and_predict_the_same(ranks):
    rank0, _, out = ranks
    files = out / "files"
    assert sorted(p.name for p in files.iterdir()) == sorted(
        ["best.pt", "final.pt", "model.pt"] + [f"weights-{e}.pt" for e in range(1, sharded_worker.EPOCHS + 1)]
    )  # no temporary file left: every write was atomic
    state = torch.load(files / "final.pt", weights_only=True)
    assert all(type(v) is torch.Tensor for v in state.values())  # whole tensors, not DTensors
    x = sharded_worker.data()["xp"]
    for name in ("final.pt", f"weights-{sharded_worker.EPOCHS}.pt"):
        plain = plain_model(files / name)
        assert max_difference(plain.get_weights(), rank0["arrays"]["weights"]) == 0.0
        np.testing.assert_allclose(plain.predict(x, verbose=0), rank0["arrays"]["predict"], atol=1e-5)
    loaded = tc.load_model(str(files / "model.pt"), module=sharded_worker.Tiny(), device="cpu")
    assert max_difference(loaded.get_weights(), rank0["arrays"]["weights"]) == 0.0
    saved = torch.load(files / "model.pt", weights_only=True)["optimizer"]
    assert sorted(saved["state"]) == list(range(len(list(loaded.module.parameters()))))  # one process's layout
    assert all(type(v) is torch.Tensor for s in saved["state"].values() for v in s.values())


@distributed
def test_sharded_load_weights_of_a_whole_file(ranks):
    for result in ranks[:2]:
        assert max_difference(result["arrays"]["loaded"], result["arrays"]["weights"]) == 0.0


@distributed
def test_sharded_backup_resumes_to_the_uninterrupted_weights(ranks):
    for result in ranks[:2]:
        uninterrupted, resumed = result["resume"]["uninterrupted"], result["resume"]["resumed"]
        assert max_difference(resumed["weights"], uninterrupted["weights"]) == 0.0
        assert resumed["history"]["loss"] == uninterrupted["history"]["loss"][1:]  # resumed in epoch 2


@distributed
def test_sharded_dataloader_is_resharded_and_matches_one_process(ranks, single):
    for result in ranks[:2]:
        assert result["loader"]["sampler"] == "PassSampler"
        assert max_difference(result["loader"]["weights"], single["loader"]["weights"]) < 1e-5
        np.testing.assert_allclose(result["loader"]["history"]["loss"], single["loader"]["history"]["loss"], atol=1e-5)


@distributed
def test_a_branch_unused_on_one_process_trains_with_find_unused_parameters(ranks):
    rank0, rank1, _ = ranks
    for key in ("unused", "unused_ddp"):
        assert np.isfinite(rank0[key]["loss"]).all()
        assert max_difference(rank0[key]["weights"], rank1[key]["weights"]) == 0.0


@distributed
def test_sharded_mixed_bfloat16_gathers_bfloat16_and_keeps_float32_weights(ranks, single):
    for result in ranks[:2]:
        assert result["mixed"]["dtypes"] == ["torch.bfloat16"]
        assert result["mixed"]["weights"] == "float32"
        # bfloat16 all the way through the forward vs autocast in one process: close, not equal
        np.testing.assert_allclose(result["mixed"]["loss"], single["mixed"]["loss"], atol=2e-2)


@distributed
def test_sharding_refusals_name_the_fix(ranks):
    errors = ranks[0]["refusals"]
    assert "ReLU has none" in errors["no_parameters"]
    assert "cuda_graph=True cannot capture sharded training" in errors["cuda_graph"]
    assert "built over the module's parameters before FSDP sharded them" in errors["stale_optimizer"]
    assert "names no submodule" in errors["unknown_module"]


@pytest.mark.gpu
def test_sharded_fit_on_two_gpus_with_nccl_matches_one_process(tmp_path_factory, single):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    rank0, rank1, _ = launch_two(tmp_path_factory, WORKER, TC_TEST_DEVICE="cuda")
    assert max_difference(rank0["arrays"]["weights"], rank1["arrays"]["weights"]) == 0.0
    assert max_difference(rank0["arrays"]["weights"], single["arrays"]["weights"]) < 1e-4
    assert rank0["arrays"]["inspect"]["dtensor"]
    assert max_difference(rank0["resume"]["resumed"]["weights"], rank0["resume"]["uninterrupted"]["weights"]) == 0.0
