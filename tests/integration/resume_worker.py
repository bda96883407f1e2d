# SPDX-License-Identifier: Apache-2.0
"""A small deterministic training run with BackupAndRestore, for tests/integration/test_resume.py.

Run as a script it trains and writes the final state_dict; with --pause-at EPOCH BATCH it
prints PAUSED after that batch and sleeps, so the test can SIGKILL it mid-epoch.
``train()`` is the same run in-process, for the uninterrupted reference.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch import nn

import torchcompile as tc

EPOCHS, SAMPLES, BATCH = 4, 96, 8  # 12 batches per epoch


class Pause(tc.callbacks.Callback):
    """Stops the process (by sleeping) after batch ``at[1]`` of epoch ``at[0]``, once PAUSED is printed."""

    def __init__(self, at: tuple[int, int] | None):
        super().__init__()
        self.at, self.epoch = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.at is not None and (self.epoch, batch) == tuple(self.at):
            print("PAUSED", flush=True)
            time.sleep(600)


def train(backup_dir: str, save_freq: str | int, pause_at: tuple[int, int] | None = None) -> dict:
    """Train from seed 0 with dropout, shuffling, Adam, metrics and stateful callbacks."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    torch.manual_seed(0)
    np.random.seed(0)
    module = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    model = tc.Model(module, device="cpu")
    model.compile(optimizer=tc.optimizers.Adam(learning_rate=0.05), loss="mse", metrics=["mae"])
    callbacks = [
        Pause(pause_at),
        tc.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=0.5),
        tc.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True),
        tc.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq),
    ]
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=True, callbacks=callbacks, verbose=0)
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("backup_dir")
    parser.add_argument("out")
    parser.add_argument("--save-freq", default="epoch")
    parser.add_argument("--pause-at", type=int, nargs=2, default=None)
    args = parser.parse_args(argv)
    save_freq = args.save_freq if args.save_freq == "epoch" else int(args.save_freq)
    torch.save(train(args.backup_dir, save_freq, args.pause_at), args.out)
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
