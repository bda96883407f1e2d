# SPDX-License-Identifier: Apache-2.0
"""A training script run unchanged by every process under torchrun, and once in one process
as the reference (tests/integration/test_distributed.py).

    python -m torch.distributed.run --nproc_per_node=2 tests/integration/distributed_worker.py OUT

Each process saves what it saw to ``OUT/rank<r>.pt``: final weights, History, evaluate and
predict results, the files it wrote (every atomic write ends in ``os.replace``) and what it
printed. It also trains from a Dataset, and checks BackupAndRestore by interrupting a run and
resuming it in a fresh model, next to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import TensorDataset

import torchcompile as tc

try:  # imported by the tests, or run as a script beside it
    from tests.integration.interrupt import Interrupt
except ImportError:
    from interrupt import Interrupt

GLOBAL_BATCH = 16
EPOCHS = 3


def data() -> dict:
    """60 training samples (global batches of 16, 16, 16, 12), 15 validation, 21 to predict."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = ((x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.5)).astype("int64")
    return {"x": x[:60], "y": y[:60], "xv": x[60:75], "yv": y[60:75], "xp": x[75:]}


class Counted(torch.nn.Sequential):
    """Counts the samples this process trains on (a sharding bug would not change the weights)."""

    seen = 0

    def forward(self, x):
        self.seen += x.shape[0] if self.training else 0
        return super().forward(x)


def build_model(metrics: list | None = None) -> tc.Model:
    torch.manual_seed(0)
    module = Counted(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model = tc.Model(module, device="cpu")
    model.compile(
        optimizer="adam",
        loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics or ["accuracy"],
    )
    return model


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


@contextlib.contextmanager
def recording_writes(written: list):
    """Record the destination of every ``os.replace`` (the last step of saving.atomic_write)."""
    replace = os.replace

    def record(src, dst, *args, **kwargs):
        written.append(os.fspath(dst))
        return replace(src, dst, *args, **kwargs)

    os.replace = record
    try:
        yield
    finally:
        os.replace = replace


def fit_arrays(d: dict, files: Path) -> dict:
    """fit with validation and the writing callbacks, then evaluate, predict and load a checkpoint."""
    model = build_model()
    callbacks = [
        tc.callbacks.ModelCheckpoint(str(files / "ckpt-{epoch}.pt"), save_weights_only=True),
        tc.callbacks.CSVLogger(str(files / "log.csv")),
        tc.callbacks.BackupAndRestore(str(files / "backup"), delete_checkpoint=False),
    ]
    printed, written = io.StringIO(), []
    with contextlib.redirect_stdout(printed), recording_writes(written):
        history = model.fit(
            d["x"],
            d["y"],
            batch_size=GLOBAL_BATCH,
            epochs=EPOCHS,
            shuffle=False,
            validation_data=(d["xv"], d["yv"]),
            callbacks=callbacks,
            verbose=2,
        )
    if dist.is_initialized():
        dist.barrier()  # rank 0's last checkpoint is on disk before the others read it
    loaded = build_model()
    loaded.load_weights(str(files / f"ckpt-{EPOCHS}.pt"))
    return {
        "weights": model.get_weights(),
        "history": history.history,
        "printed": printed.getvalue(),
        "seen": model.module.seen,
        "written": written,
        "loaded": loaded.get_weights(),
        "evaluate": model.evaluate(d["xv"], d["yv"], batch_size=8, verbose=0, return_dict=True),
        "predict": model.predict(d["xp"], batch_size=8, verbose=0),
    }


def fit_dataset(d: dict) -> dict:
    """fit from a map-style Dataset: fit shards it through a batch sampler."""
    model = build_model()
    dataset = TensorDataset(torch.from_numpy(d["x"]), torch.from_numpy(d["y"]))
    history = model.fit(dataset, batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0)
    return {"weights": model.get_weights(), "history": history.history, "seen": model.module.seen}


class ReadOnRankZero(tc.callbacks.Callback):
    """Read every batch's logs on rank 0 only, as the progress bar does."""

    def on_train_batch_end(self, batch, logs=None):
        if rank() == 0:
            {k: float(v) for k, v in logs.items()}


def fit_torchmetrics(d: dict) -> dict | None:
    """A torchmetrics metric next to a tc one: global values, and no wait on rank 0's reads."""
    try:
        from torchmetrics.classification import MulticlassAccuracy
    except ImportError:
        return None
    model = build_model(["accuracy", MulticlassAccuracy(num_classes=3, average="micro")])
    history = model.fit(
        d["x"],
        d["y"],
        batch_size=GLOBAL_BATCH,
        epochs=2,
        shuffle=False,
        verbose=0,
        validation_data=(d["xv"], d["yv"]),
        callbacks=[ReadOnRankZero()],
    )
    return history.history


class StopOnRankOne(tc.callbacks.Callback):
    """Ask to stop after batch 1, on rank 1 only."""

    def on_train_batch_end(self, batch, logs=None):
        if rank() == 1 and batch == 1:
            self.model.stop_training = True


def fit_stopped_on_one_rank(d: dict) -> dict:
    model = build_model()
    history = model.fit(d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=EPOCHS, verbose=0, callbacks=[StopOnRankOne()])
    return {"epochs": len(history.history["loss"]), "seen": model.module.seen}


def fit_resumable(d: dict, backup: Path, interrupt_at: tuple[int, int] | None = None) -> dict:
    """Shuffled fit backed up every 2 batches; interrupted at ``interrupt_at`` if given."""
    model = build_model()
    callbacks = [tc.callbacks.BackupAndRestore(str(backup), save_freq=2)]
    callbacks += [Interrupt(interrupt_at)] if interrupt_at else []
    history = model.fit(d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=EPOCHS, callbacks=callbacks, verbose=0)
    return {"weights": model.get_weights(), "history": history.history}


def resume(d: dict, folder: Path) -> dict:
    """An uninterrupted shuffled run, and one interrupted mid-epoch then resumed in a fresh model."""
    uninterrupted = fit_resumable(d, folder / "uninterrupted")
    try:
        fit_resumable(d, folder / "interrupted", interrupt_at=(1, 2))
    except KeyboardInterrupt:
        pass
    return {"uninterrupted": uninterrupted, "resumed": fit_resumable(d, folder / "interrupted")}


ACCUMULATION_STEPS = 3  # 4 global batches an epoch: partial cycles carry across epochs


def build_accumulating_model() -> tc.Model:
    torch.manual_seed(0)
    module = Counted(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model = tc.Model(module, device="cpu")
    optimizer = tc.optimizers.Adam(learning_rate=0.02, clipnorm=1.0, gradient_accumulation_steps=ACCUMULATION_STEPS)
    model.compile(optimizer=optimizer, loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class CountAllReduces(tc.callbacks.Callback):
    """Counts DDP's gradient all-reduces: its communication hook runs once per bucket it reduces."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_train_begin(self, logs=None):
        ddp = self.model._compiled.ddp
        if ddp is not None:
            ddp.register_comm_hook(self, CountAllReduces._hook)

    @staticmethod
    def _hook(state, bucket):
        state.count += 1
        fut = dist.all_reduce(bucket.buffer().div_(dist.get_world_size()), async_op=True).get_future()
        return fut.then(lambda f: f.value()[0])


def fit_accumulated(d: dict, backup: Path, interrupt_at: tuple[int, int] | None = None, shuffle: bool = True) -> dict:
    """gradient_accumulation_steps=3 over 3 epochs of 4 batches, backed up after every batch."""
    model = build_accumulating_model()
    counter = CountAllReduces()
    callbacks = [counter, tc.callbacks.BackupAndRestore(str(backup), save_freq=1)]
    callbacks += [Interrupt(interrupt_at)] if interrupt_at else []
    history = model.fit(
        d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=EPOCHS, callbacks=callbacks, shuffle=shuffle, verbose=0
    )
    return {
        "weights": model.get_weights(),
        "history": history.history,
        "seen": model.module.seen,
        "all_reduces": counter.count,
        "iterations": model.optimizer.param_groups[0]["iterations"],
    }


def accumulated(d: dict, folder: Path) -> dict:
    """In order (against one process), and shuffled: uninterrupted, and interrupted mid-accumulation
    (at epoch 1's first batch; the last backup holds a partial sum) then resumed in a fresh model."""
    in_order = fit_accumulated(d, folder / "in_order", shuffle=False)
    uninterrupted = fit_accumulated(d, folder / "uninterrupted")
    try:
        fit_accumulated(d, folder / "interrupted", interrupt_at=(1, 0))
    except KeyboardInterrupt:
        pass
    resumed = fit_accumulated(d, folder / "interrupted")
    return {"in_order": in_order, "uninterrupted": uninterrupted, "resumed": resumed}


def run(out: Path) -> dict:
    d = data()
    return {
        "accumulated": accumulated(d, out / "accumulated"),
        "arrays": fit_arrays(d, out / "files"),
        "dataset": fit_dataset(d),
        "resume": resume(d, out / "resume"),
        "torchmetrics": fit_torchmetrics(d),
        "stopped": fit_stopped_on_one_rank(d),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    result = run(out)
    torch.save(result, out / f"rank{rank()}.pt")
