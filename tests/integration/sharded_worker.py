# SPDX-License-Identifier: Apache-2.0
"""A training script run sharded (``distribution="fsdp"``) by every process under torchrun, and once
in one process (``distribution=None``) as the reference (tests/integration/test_sharded.py).

    python -m torch.distributed.run --nproc_per_node=2 tests/integration/sharded_worker.py OUT

Each process saves what it saw to ``OUT/rank<r>.pt``: weights, History, evaluate and predict
results, whether the parameters were DTensors during training and how many bytes of parameters
and optimizer state it held, the files it wrote; a BackupAndRestore run interrupted and resumed
next to an uninterrupted one; a module with a branch unused on some steps; a DataLoader resharded.
``TC_TEST_DEVICE=cuda`` runs it on the GPUs (nccl).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchcompile as tc

try:  # imported by the tests, or run as a script beside it
    from tests.integration.interrupt import Interrupt
except ImportError:
    from interrupt import Interrupt
from torchcompile.engine import distributed

GLOBAL_BATCH = 16
EPOCHS = 3
DEVICE = os.environ.get("TC_TEST_DEVICE", "cpu")


class Block(nn.Module):
    """A pre-norm transformer MLP block (what FSDP shards as a unit by default)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)

    def forward(self, x):
        return x + self.down(torch.nn.functional.gelu(self.up(self.norm(x))))


class Tiny(nn.Module):
    """Embedding, two blocks, a head: the shape of a transformer, small enough for a test."""

    def __init__(self, width: int = 16, blocks: int = 2):
        super().__init__()
        self.embed = nn.Linear(6, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(blocks))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def data() -> dict:
    """60 training samples (global batches of 16, 16, 16, 12), 15 validation, 21 to predict."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = ((x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 0.5)).astype("int64")
    return {"x": x[:60], "y": y[:60], "xv": x[60:75], "yv": y[60:75], "xp": x[75:]}


def build_model(distribution, module: nn.Module | None = None, optimizer="adam") -> tc.Model:
    torch.manual_seed(0)
    model = tc.Model(module or Tiny(), device=DEVICE, distribution=distribution)
    # tc.Model shards when built (model.py calls distributed.shard); a no-op once it has.
    distributed.shard(model.module, model.device, model.distribution)
    if isinstance(optimizer, torch.optim.Optimizer):  # compile's check (compiled.py calls distributed.check_compile)
        distributed.check_compile(model.module, optimizer, cuda_graph=False)
    model.compile(
        optimizer=optimizer,
        loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def local_bytes(tensors) -> int:
    """Bytes this process holds for ``tensors`` (a DTensor's local shard)."""
    total = 0
    for t in tensors:
        local = t.to_local() if hasattr(t, "to_local") else t
        total += local.numel() * local.element_size()
    return total


class Inspect(tc.callbacks.Callback):
    """During training: whether every parameter is a DTensor, and the bytes of parameters and optimizer state."""

    def __init__(self):
        super().__init__()
        self.seen: dict = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.seen:
            return
        params = list(self.model.module.parameters())
        state = [v for s in self.model.optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim()]
        self.seen = {
            "dtensor": all(type(p).__name__ == "DTensor" for p in params),
            "param_bytes": local_bytes(params),
            "optimizer_bytes": local_bytes(state),
            "full_param_bytes": sum(p.numel() * p.element_size() for p in params),
        }


def fit_arrays(d: dict, files: Path, distribution) -> dict:
    model = build_model(distribution)
    inspect = Inspect()
    callbacks = [
        inspect,
        tc.callbacks.ModelCheckpoint(str(files / "weights-{epoch}.pt"), save_weights_only=True),
        tc.callbacks.ModelCheckpoint(str(files / "best.pt"), monitor="val_loss", save_best_only=True),
    ]
    history = model.fit(
        d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=EPOCHS, shuffle=False,
        validation_data=(d["xv"], d["yv"]), callbacks=callbacks, verbose=0,
    )  # fmt: skip
    model.save_weights(str(files / "final.pt"))  # every process: sharded, rank 0 writes
    model.save(str(files / "model.pt"))
    loaded = build_model(distribution)
    loaded.load_weights(str(files / f"weights-{EPOCHS}.pt"))
    return {
        "weights": model.get_weights(),
        "history": history.history,
        "inspect": inspect.seen,
        "loaded": loaded.get_weights(),
        "evaluate": model.evaluate(d["xv"], d["yv"], batch_size=8, verbose=0, return_dict=True),
        "predict": model.predict(d["xp"], batch_size=8, verbose=0),
        "predict_odd": model.predict(d["xp"][:9], batch_size=4, verbose=0),  # a last batch of one sample
    }


def fit_resumable(d: dict, backup: Path, distribution, interrupt_at=None) -> dict:
    model = build_model(distribution)
    callbacks = [tc.callbacks.BackupAndRestore(str(backup), save_freq=2)]
    callbacks += [Interrupt(interrupt_at)] if interrupt_at else []
    history = model.fit(d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=EPOCHS, callbacks=callbacks, verbose=0)
    return {"weights": model.get_weights(), "history": history.history}


def resume(d: dict, folder: Path, distribution) -> dict:
    uninterrupted = fit_resumable(d, folder / "uninterrupted", distribution)
    try:
        fit_resumable(d, folder / "interrupted", distribution, interrupt_at=(1, 2))
    except KeyboardInterrupt:
        pass
    return {"uninterrupted": uninterrupted, "resumed": fit_resumable(d, folder / "interrupted", distribution)}


class Branchy(nn.Module):
    """A branch that runs on rank 0's batches only: on rank 1 its parameters get no gradient."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(6, 3)
        self.branch = nn.Linear(6, 3)

    def forward(self, x):
        out = self.trunk(x)
        return out + self.branch(x) if rank() == 0 else out


def fit_unused_branch(d: dict, distribution) -> dict:
    torch.manual_seed(0)
    model = build_model(distribution, module=Branchy())
    history = model.fit(d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0)
    return {"loss": history.history["loss"], "weights": model.get_weights()}


def fit_loader(d: dict, distribution) -> dict:
    """A DataLoader of 8 per process under 2 processes: resharded, it trains as batch 16 in one process."""
    dataset = TensorDataset(torch.from_numpy(d["x"]), torch.from_numpy(d["y"]))
    per_process = GLOBAL_BATCH // (dist.get_world_size() if dist.is_initialized() else 1)
    loader = distributed.reshard_loader(DataLoader(dataset, batch_size=per_process), training=True)
    model = build_model(distribution)
    history = model.fit(loader, epochs=2, verbose=0)
    return {"weights": model.get_weights(), "history": history.history, "sampler": type(loader.sampler).__name__}


class DtypeSeen(nn.Module):
    """Records the dtype of the weight its wrapped layer computes with (FSDP's gathered parameters)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer, self.dtypes = layer, set()

    def forward(self, x):
        self.dtypes.add(str(self.layer.weight.dtype))
        return self.layer(x)


def fit_mixed(d: dict, distribution) -> dict:
    """Under mixed_bfloat16 (set before building, as in Keras): FSDP gathers bfloat16 parameters."""
    tc.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        torch.manual_seed(0)  # the same initial weights as the one-process run
        module = Tiny()
        module.head = DtypeSeen(module.head)
        model = build_model(distribution, module=module)
        history = model.fit(d["x"], d["y"], batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0)
    finally:
        tc.mixed_precision.set_global_policy(None)
    weights = model.get_weights()
    return {
        "loss": history.history["loss"],
        "dtypes": sorted(module.head.dtypes),
        "weights": str(weights[0].dtype),
    }


def refusals() -> dict:
    """The messages of what sharding refuses (under several processes)."""
    from torchcompile.engine import sharding

    errors = {}
    attempts = {
        "no_parameters": lambda: distributed.shard(nn.ReLU(), torch.device(DEVICE), "fsdp"),
        "cuda_graph": lambda: sharding.check_compile(build_model("fsdp").module, None, cuda_graph=True),
        "stale_optimizer": lambda: _stale_optimizer(),
        "unknown_module": lambda: distributed.shard(Tiny(), torch.device(DEVICE), tc.distribution.FSDP(["nope"])),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
            errors[name] = None
        except (ValueError, RuntimeError) as e:
            errors[name] = str(e)
    return errors


def _stale_optimizer() -> None:
    module = Tiny()
    optimizer = torch.optim.Adam(module.parameters())  # built before sharding
    build_model("fsdp", module=module, optimizer=optimizer)


def run(out: Path, sharded: bool = True) -> dict:
    d = data()
    fsdp = "fsdp" if sharded else None
    # The branch is no unit of its own (modules=[]: the root alone), so every process gathers it.
    unused = tc.distribution.FSDP(modules=[], find_unused_parameters=True) if sharded else None
    ddp_unused = tc.distribution.DataParallel(find_unused_parameters=True)
    return {
        "arrays": fit_arrays(d, out / "files", fsdp),
        "resume": resume(d, out / "resume", fsdp),
        "loader": fit_loader(d, fsdp),
        "unused": fit_unused_branch(d, unused) if sharded else None,
        "unused_ddp": fit_unused_branch(d, ddp_unused) if sharded else None,
        "mixed": fit_mixed(d, fsdp),
        "refusals": refusals() if sharded else None,
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    result = run(out)
    torch.save(result, out / f"rank{rank()}.pt")
