# SPDX-License-Identifier: Apache-2.0
"""What this round's features cost on the 784-128-10 MLP at batch 64 (issue 19's "each under 2%").

Each row is a ``fit`` (one MNIST-sized epoch, 938 steps) of the same architecture on the same data,
timed alternating with the plain
``tc.Model(module)`` fit in one process (CPU time, one torch thread, medians of the pairs):

- ``Model`` subclass computing through ``call()`` (a Keras-style model that is its own nn.Module);
- a dict batch: ``fit({"features": x}, y)`` into a ``forward(self, features)``;
- gradient accumulation off: ``compile(gradient_accumulation_steps=None)`` spelled out (the
  feature's code is not on the step's path unless N is set; the row checks it);
- ``TensorBoard(update_freq="epoch")``: event files written once per epoch, and the graph traced
  once per ``fit`` (Keras' default ``write_graph=True``); then the same without the graph;
- a custom ``train_step`` as keras.io's guide writes it (``self(x, training=True)``,
  ``compute_loss``, ``backward``, ``step``, ``compute_metrics`` and its returned logs), for
  reference: that row is the user's step on the general path, not a cost of ``fit``.

Usage: ``python benchmarks/features.py [--rounds 11] [--markdown]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from typing import Callable

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import runners  # noqa: E402

import torchcompile as tc  # noqa: E402

KEY = "mlp64"
EPOCHS = 1
SAMPLES = 60_000  # an MNIST-sized epoch (938 steps): what a per-epoch callback is spread over in use


class Subclass(tc.Model):
    """The MLP as a Keras-style subclass: its own layers, computing through call()."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(784, 128), nn.Linear(128, 10)

    def call(self, x):
        return self.out(torch.relu(self.hidden(x)))


class DictInput(nn.Sequential):
    """The same layers as the plain row's ``nn.Sequential``, taking its input by keyword."""

    def forward(self, features):
        return super().forward(features)


class GuideStep(tc.Model):
    """keras.io's "customizing what happens in fit" train_step, on torch."""

    def train_step(self, data):
        x, y = data
        y_pred = self(x, training=True)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.metrics[0].update_state(loss.detach(), sample_weight=x.shape[0])
        return self.compute_metrics(x, y, y_pred)


ROWS = {
    "plain": "tc.Model(module).fit(x, y)",
    "subclass": "Model subclass computing through call()",
    "dict": 'dict batches: fit({"features": x}, y)',
    "accumulation_off": "compile(gradient_accumulation_steps=None)",
    "tensorboard": 'TensorBoard(update_freq="epoch")',
    "tensorboard_no_graph": 'TensorBoard(update_freq="epoch", write_graph=False)',
    "guide_step": "custom train_step (keras.io guide), for reference",
}


def session(row: str, logdir: str) -> Callable[[], None]:
    w = dataclasses.replace(runners.WORKLOADS[KEY], samples=SAMPLES)
    x, y = runners.make_data(w)
    inputs = {"features": x} if row == "dict" else x
    if row == "subclass":
        model = Subclass()
    else:
        module = DictInput(*runners.make_module(KEY)) if row == "dict" else runners.make_module(KEY)
        model = (GuideStep if row == "guide_step" else tc.Model)(module, device="cpu")
    extra = {"gradient_accumulation_steps": None} if row == "accumulation_off" else {}
    model.compile(
        optimizer=tc.optimizers.Adam(learning_rate=1e-3),
        loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **extra,
    )
    graph = row == "tensorboard"
    callbacks = [tc.callbacks.TensorBoard(log_dir=os.path.join(logdir, row), update_freq="epoch", write_graph=graph)]
    callbacks = callbacks if row.startswith("tensorboard") else None

    def run() -> None:
        model.fit(inputs, y, batch_size=w.batch_size, epochs=EPOCHS, verbose=0, callbacks=callbacks)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    w = dataclasses.replace(runners.WORKLOADS[KEY], samples=SAMPLES)
    steps = EPOCHS * -(-w.samples // w.batch_size)
    with tempfile.TemporaryDirectory() as logdir:
        torch.manual_seed(0)
        runs = {row: session(row, logdir) for row in ROWS}
        for run in runs.values():
            run()  # warm-up
        times: dict[str, list[float]] = {row: [] for row in ROWS}
        order = list(ROWS)
        for r in range(args.rounds):
            for row in order[r % len(order) :] + order[: r % len(order)]:
                start = time.process_time()
                runs[row]()
                times[row].append((time.process_time() - start) / steps * 1e6)
    lines = [
        f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, 1 thread, {args.rounds} rounds of "
        f"{steps} steps per row, alternating; CPU µs/step (median) and the medians of the pairs with the plain fit",
        "",
        "| row | µs/step | × plain fit | range of pairs |",
        "|---|---:|---:|---:|",
    ]
    for row, label in ROWS.items():
        ratios = [t / p for t, p in zip(times[row], times["plain"])]
        spread = "—" if row == "plain" else f"{min(ratios):.3f}–{max(ratios):.3f}"
        lines.append(f"| {label} | {statistics.median(times[row]):.0f} | {statistics.median(ratios):.3f}× | {spread} |")
    text = "\n".join(lines)
    print(text if args.markdown else text.replace("|", " ").replace("---:", "").replace("---", ""))


if __name__ == "__main__":
    main()
