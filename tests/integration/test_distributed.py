# SPDX-License-Identifier: Apache-2.0
"""Two processes under torchrun on the CPU (gloo) against the same script in one process.

One launch (``distributed_worker.py`` under ``python -m torch.distributed.run``) serves every
test here. ``test_fit_under_two_processes_matches_one_process`` runs in the default suite;
the rest need ``TC_TEST_DISTRIBUTED=1``.
"""

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.integration import distributed_worker

pytestmark = pytest.mark.slow
distributed = pytest.mark.distributed
WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out, env, worker: str = WORKER) -> tuple[int, str]:
    """One torchrun launch of ``worker`` on a free port; its return code and output."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        worker,
        str(out),
    ]
    # A session of its own, so a timeout ends the workers too, not only the launcher.
    launcher = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = launcher.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        output, _ = launcher.communicate()
        pytest.fail(f"torchrun did not finish in {LAUNCH_TIMEOUT_S}s:\n{output[-3000:]}")
    return launcher.returncode, output


def launch_two(tmp_path_factory, worker: str = WORKER, **env_vars: str) -> list:
    """What each of two processes running ``worker`` saved, and the output folder.

    A failed launch is tried once more on a fresh port: the free port can be taken between
    choosing it and torchrun binding it. A second failure fails the tests, with both outputs.
    """
    path = os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **env_vars}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo on loopback, whatever the hostname resolves to
    outputs = []
    for _ in range(2):
        out = tmp_path_factory.mktemp("two_processes")
        returncode, output = _launch(out, env, worker)
        if returncode == 0:
            return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)] + [out]
        outputs.append(output[-4000:])
    pytest.fail("torchrun failed twice:\n" + "\n----- second launch -----\n".join(outputs))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the two processes saved."""
    return launch_two(tmp_path_factory)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The same script in this one process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return distributed_worker.run(tmp_path_factory.mktemp("one_process"))
    finally:
        torch.set_num_threads(threads)


def max_difference(a, b) -> float:
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b, strict=True))


def test_fit_under_two_processes_matches_one_process(ranks, single):
    rank0, rank1, _ = ranks
    assert max_difference(rank0["arrays"]["weights"], rank1["arrays"]["weights"]) == 0.0
    assert max_difference(rank0["arrays"]["weights"], single["arrays"]["weights"]) < 1e-5
    epochs = distributed_worker.EPOCHS
    assert single["arrays"]["seen"] == 60 * epochs and rank0["arrays"]["seen"] == rank1["arrays"]["seen"] == 30 * epochs


@distributed
def test_history_under_two_processes_holds_the_global_values(ranks, single):
    expected = single["arrays"]["history"]
    for result in ranks[:2]:
        history = result["arrays"]["history"]
        assert list(history) == list(expected)  # the one-process run's keys, in its order
        for key in expected:
            np.testing.assert_allclose(history[key], expected[key], rtol=0, atol=1e-5)


@distributed
def test_evaluate_under_two_processes_returns_global_values(ranks, single):
    for result in ranks[:2]:
        for key, value in single["arrays"]["evaluate"].items():
            assert result["arrays"]["evaluate"][key] == pytest.approx(value, abs=1e-5)


@distributed
def test_predict_under_two_processes_returns_every_sample_in_order(ranks, single):
    expected = single["arrays"]["predict"]
    assert expected.shape == (21, 3)
    for result in ranks[:2]:
        np.testing.assert_allclose(result["arrays"]["predict"], expected, rtol=0, atol=1e-5)


@distributed
def test_callbacks_under_two_processes_write_on_rank_zero_only(ranks):
    rank0, rank1, out = ranks
    files = str(out / "files")
    assert [p for p in rank1["arrays"]["written"] if p.startswith(files)] == []
    written = {os.path.relpath(p, files) for p in rank0["arrays"]["written"]}
    backup = {os.path.join("backup", "latest.pt"), os.path.join("backup", "owner.lock")}  # the run lock, too
    assert written == {"ckpt-1.pt", "ckpt-2.pt", "ckpt-3.pt", "log.csv"} | backup
    assert sorted(os.listdir(files)) == ["backup", "ckpt-1.pt", "ckpt-2.pt", "ckpt-3.pt", "log.csv"]


@distributed
def test_csv_under_two_processes_holds_the_global_values(ranks, single):
    rows = (ranks[2] / "files" / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,accuracy,loss,val_accuracy,val_loss" and len(rows) == 1 + distributed_worker.EPOCHS
    last = dict(zip(rows[0].split(","), map(float, rows[-1].split(","))))
    assert last["val_loss"] == pytest.approx(single["arrays"]["history"]["val_loss"][-1], abs=1e-5)


@distributed
def test_progress_under_two_processes_prints_on_rank_zero_only(ranks):
    rank0, rank1, _ = ranks
    assert rank0["arrays"]["printed"].count("Epoch ") == distributed_worker.EPOCHS
    assert rank1["arrays"]["printed"] == ""


@distributed
def test_checkpoint_under_two_processes_loads_on_every_rank(ranks):
    for result in ranks[:2]:
        assert max_difference(result["arrays"]["loaded"], result["arrays"]["weights"]) == 0.0


@distributed
def test_dataset_fit_under_two_processes_matches_one_process(ranks, single):
    rank0, rank1, _ = ranks
    assert max_difference(rank0["dataset"]["weights"], rank1["dataset"]["weights"]) == 0.0
    assert max_difference(rank0["dataset"]["weights"], single["dataset"]["weights"]) < 1e-5
    np.testing.assert_allclose(rank0["dataset"]["history"]["loss"], single["dataset"]["history"]["loss"], atol=1e-5)
    assert rank0["dataset"]["seen"] == rank1["dataset"]["seen"] == single["dataset"]["seen"] // 2


@distributed
def test_backup_under_two_processes_resumes_to_the_uninterrupted_weights(ranks):
    for result in ranks[:2]:
        uninterrupted, resumed = result["resume"]["uninterrupted"], result["resume"]["resumed"]
        assert max_difference(resumed["weights"], uninterrupted["weights"]) == 0.0
        assert resumed["history"]["loss"] == uninterrupted["history"]["loss"][1:]  # resumed in epoch 2
    assert max_difference(ranks[0]["resume"]["resumed"]["weights"], ranks[1]["resume"]["resumed"]["weights"]) == 0.0


@distributed
def test_torchmetrics_metric_under_two_processes_holds_the_global_values(ranks, single):
    expected = single["torchmetrics"]
    if expected is None:
        pytest.skip("needs torchmetrics")
    assert sorted(expected) == [
        "accuracy",
        "loss",
        "multiclass_accuracy",
        "val_accuracy",
        "val_loss",
        "val_multiclass_accuracy",
    ]
    for result in ranks[:2]:
        for key in expected:
            np.testing.assert_allclose(result["torchmetrics"][key], expected[key], rtol=0, atol=1e-5)
    np.testing.assert_allclose(expected["multiclass_accuracy"], expected["accuracy"], atol=1e-6)


@distributed
def test_stop_asked_on_one_process_stops_every_process_at_the_epoch_end(ranks):
    for result in ranks[:2]:
        assert result["stopped"] == {"epochs": 1, "seen": 30}  # the whole first epoch, then no more


@distributed
def test_accumulation_under_two_processes_matches_one_process_and_all_reduces_on_updates_only(ranks, single):
    rank0, rank1, _ = ranks
    expected = single["accumulated"]["in_order"]
    for result in (rank0, rank1):
        run = result["accumulated"]["in_order"]
        assert max_difference(run["weights"], expected["weights"]) < 1e-5
        np.testing.assert_allclose(run["history"]["loss"], expected["history"]["loss"], rtol=0, atol=1e-5)
        assert run["iterations"] == expected["iterations"] == 4 * distributed_worker.EPOCHS // 3
        assert run["seen"] * 2 == expected["seen"]
        # one all-reduce per update (the model's gradients fit in one DDP bucket), none on the others
        assert run["all_reduces"] == run["iterations"]
    assert (
        max_difference(rank0["accumulated"]["in_order"]["weights"], rank1["accumulated"]["in_order"]["weights"]) == 0.0
    )


@distributed
def test_accumulation_under_two_processes_resumes_mid_accumulation_bit_for_bit(ranks):
    for result in ranks[:2]:
        uninterrupted, resumed = result["accumulated"]["uninterrupted"], result["accumulated"]["resumed"]
        assert max_difference(resumed["weights"], uninterrupted["weights"]) == 0.0
        losses = resumed["history"]["loss"]  # the epochs from the one the backup was in
        assert losses == uninterrupted["history"]["loss"][-len(losses) :]
    assert (
        max_difference(ranks[0]["accumulated"]["resumed"]["weights"], ranks[1]["accumulated"]["resumed"]["weights"])
        == 0
    )
