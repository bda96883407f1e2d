# SPDX-License-Identifier: Apache-2.0
"""The training loops that ``fit_overhead.py`` times: one function per row of its table.

Every runner trains the same architecture (``WORKLOADS``) on the same synthetic data with
Adam (lr 1e-3, eps 1e-7), sparse categorical crossentropy on logits and an accuracy metric,
for the same number of steps, and returns ``(wall seconds, CPU seconds)`` of the timed part.
Each builds its model, runs one short warm-up epoch (lazy imports, allocators, compilation),
then times ``epochs`` epochs in one call, as a user would run them, ``REPEATS`` times over
(the model keeps training), and reports the median.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Workload:
    name: str
    batch_size: int
    samples: int
    shape: tuple[int, ...]  # one sample's shape
    classes: int = 10


WORKLOADS = {
    # Dispatch-bound: a step computes almost nothing, so the host's per-step work decides its time.
    "linear8": Workload("nn.Linear(8, 2), batch 8", 8, 4096, (8,), classes=2),
    "mlp64": Workload("784-128-10 MLP, batch 64", 64, 8192, (784,)),
    "mlp1024": Workload("784-128-10 MLP, batch 1024", 1024, 32768, (784,)),
    "cnn128": Workload("small CNN, batch 128", 128, 2048, (1, 28, 28)),
}


def make_module(workload: str) -> nn.Module:
    if workload == "linear8":
        return nn.Linear(8, 2)
    if workload.startswith("mlp"):
        return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def make_keras_model(workload: str):
    import keras

    if workload == "linear8":
        layers = [keras.Input((8,)), keras.layers.Dense(2)]
    elif workload.startswith("mlp"):
        layers = [keras.Input((784,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    else:  # channels_last, as Keras expects; the same layers as make_module
        layers = [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    return keras.Sequential(layers)


def make_data(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(workload.samples, *workload.shape)).astype("float32")
    return x, rng.integers(0, workload.classes, size=workload.samples).astype("int64")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


REPEATS = 3  # timed runs per process; the worker reports the median of each clock


def timed(device: torch.device, fn: Callable[[], None]) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``REPEATS`` calls of ``fn``, each bracketed by a device sync."""
    walls, cpus = [], []
    for _ in range(REPEATS):
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def fast_loop(key: str, device: torch.device, epochs: int) -> tuple[float, float]:
    """The floor: data on the device once, a device permutation per epoch, one sync per epoch."""
    run = fast_loop_session(key, device)
    w = WORKLOADS[key]
    run(1, w.samples // 8)
    return timed(device, lambda: run(epochs, w.samples))


def fast_loop_session(key: str, device: torch.device) -> Callable[[int, int], None]:
    """The fast loop's model and optimizer, built once; returns ``run(epochs, samples)``."""
    w = WORKLOADS[key]
    x, y = make_data(w)
    module = make_module(key).to(device)
    # The best hand-written loop uses torch's fused Adam, as tc does on CPU and CUDA.
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7, fused=True)

    def run(n_epochs: int, limit: int) -> None:
        xs, ys = torch.from_numpy(x[:limit]).to(device), torch.from_numpy(y[:limit]).to(device)
        module.train()
        for _ in range(n_epochs):
            total, correct = torch.zeros((), device=device), torch.zeros((), device=device)
            order = torch.randperm(limit, device=device)
            for begin in range(0, limit, w.batch_size):
                index = order[begin : begin + w.batch_size]
                xb, yb = xs[index], ys[index]
                logits = module(xb)
                loss = F.cross_entropy(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * yb.shape[0]
                correct += (logits.detach().argmax(-1) == yb).sum()
            _ = [(total / limit).item(), (correct / limit).item()]  # one sync per epoch

    return run


def tutorial_loop(key: str, device: torch.device, epochs: int) -> tuple[float, float]:
    """The loop most tutorials show: a shuffling DataLoader and ``.item()`` every step."""
    from torch.utils.data import DataLoader, TensorDataset

    w = WORKLOADS[key]
    x, y = make_data(w)
    module = make_module(key).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, eps=1e-7)

    def run(n_epochs: int, limit: int) -> None:
        loader = DataLoader(
            TensorDataset(torch.from_numpy(x[:limit]), torch.from_numpy(y[:limit])),
            batch_size=w.batch_size,
            shuffle=True,
            pin_memory=device.type == "cuda",
        )
        module.train()
        for _ in range(n_epochs):
            running_loss, correct, seen = 0.0, 0, 0
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                optimizer.zero_grad()
                logits = module(xb)
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                optimizer.step()
                running_loss += loss.item() * yb.shape[0]
                correct += (logits.argmax(1) == yb).sum().item()
                seen += yb.shape[0]

    run(1, w.samples // 8)
    return timed(device, lambda: run(epochs, w.samples))


def tc_fit(key: str, device: torch.device, epochs: int, verbose: int = 0, **compile_args) -> tuple[float, float]:
    """``tc.Model(module).compile(...)`` then ``fit(x, y, batch_size, epochs, verbose)`` on NumPy arrays."""
    run = tc_fit_session(key, device, verbose, **compile_args)
    w = WORKLOADS[key]
    run(1, w.samples // 8)
    return timed(device, lambda: run(epochs, w.samples))


def tc_fit_session(key: str, device: torch.device, verbose: int = 0, **compile_args) -> Callable[[int, int], None]:
    """A compiled ``tc.Model``, built once; returns ``run(epochs, samples)``: one ``fit`` call (the bar,
    with ``verbose=1``, drawn into a buffer). ``run.model`` is the model."""
    import warnings

    import torchcompile as tc

    w = WORKLOADS[key]
    x, y = make_data(w)
    model = tc.Model(make_module(key), device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # e.g. mixed_float16 on the CPU
        model.compile(
            optimizer=tc.optimizers.Adam(learning_rate=1e-3),
            loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            **compile_args,
        )

    def run(n_epochs: int, limit: int) -> None:
        with _quiet(verbose):
            model.fit(x[:limit], y[:limit], batch_size=w.batch_size, epochs=n_epochs, verbose=verbose)

    run.model = model
    return run


def keras_fit(key: str, device: torch.device, epochs: int) -> tuple[float, float]:
    """Keras 3 on the torch backend: the same layers, ``fit`` on NumPy arrays, verbose=0."""
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    w = WORKLOADS[key]
    x, y = make_data(w)
    if key.startswith("cnn"):
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # channels_last
    model = make_keras_model(key)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x[: w.samples // 8], y[: w.samples // 8], batch_size=w.batch_size, epochs=1, verbose=0)
    return timed(device, lambda: model.fit(x, y, batch_size=w.batch_size, epochs=epochs, verbose=0))


def lightning_fit(key: str, device: torch.device, epochs: int) -> tuple[float, float]:
    """A Lightning Trainer over the same device-side batches as the fast loop (no DataLoader cost),
    logging the loss and accuracy per epoch; progress bar, checkpoints, logger and summary off."""
    import logging
    import warnings

    import lightning as L

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    w = WORKLOADS[key]
    x, y = make_data(w)
    module = make_module(key)

    class Classifier(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = module

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            logits = self.net(xb)
            loss = F.cross_entropy(logits, yb)
            accuracy = (logits.detach().argmax(-1) == yb).float().mean()
            self.log_dict({"loss": loss, "accuracy": accuracy}, on_step=False, on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3, eps=1e-7)

    classifier = Classifier()

    def run(n_epochs: int, limit: int) -> None:
        trainer = L.Trainer(
            max_epochs=n_epochs,
            accelerator=device.type,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(classifier, train_dataloaders=DeviceBatches(x[:limit], y[:limit], w.batch_size, device))

    run(1, w.samples // 8)
    return timed(device, lambda: run(epochs, w.samples))


class DeviceBatches:
    """A re-iterable of shuffled device-side batches (what the fast loop does), for Lightning."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device):
        self.x, self.y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.x), device=self.x.device)
        for begin in range(0, len(self.x), self.batch_size):
            index = order[begin : begin + self.batch_size]
            yield self.x[index], self.y[index]


@contextlib.contextmanager
def _quiet(verbose: int):
    """The bar is drawn (its cost counted) into a buffer instead of the terminal."""
    if not verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


RUNNERS: dict[str, tuple[str, Callable[..., tuple[float, float]]]] = {
    "fast": ("hand-written fast loop", fast_loop),
    "tutorial": ("tutorial loop (DataLoader, .item())", tutorial_loop),
    "tc0": ("tc fit(verbose=0)", tc_fit),
    "tc1": ("tc fit(verbose=1)", lambda k, d, e: tc_fit(k, d, e, verbose=1)),
    "tc_spe": (
        "tc fit, steps_per_execution=8",
        lambda k, d, e: tc_fit(k, d, e, steps_per_execution=8, cuda_graph=d.type == "cuda"),
    ),
    "tc_jit": ("tc fit, jit_compile=True", lambda k, d, e: tc_fit(k, d, e, jit_compile=True)),
    "tc_bf16": ("tc fit, mixed_bfloat16", lambda k, d, e: tc_fit(k, d, e, dtype_policy="mixed_bfloat16")),
    "tc_f16": ("tc fit, mixed_float16", lambda k, d, e: tc_fit(k, d, e, dtype_policy="mixed_float16")),
    "tc_graph": (
        "tc fit, cuda_graph=True (steps_per_execution=1)",
        lambda k, d, e: tc_fit(k, d, e, cuda_graph=d.type == "cuda"),
    ),
    "tc_spe_bf16": (
        "tc fit, steps_per_execution=8, mixed_bfloat16",
        lambda k, d, e: tc_fit(
            k, d, e, steps_per_execution=8, cuda_graph=d.type == "cuda", dtype_policy="mixed_bfloat16"
        ),
    ),
    "keras": ("Keras 3 (torch backend)", keras_fit),
    "lightning": ("Lightning Trainer", lightning_fit),
}
