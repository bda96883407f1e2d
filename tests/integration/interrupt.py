# SPDX-License-Identifier: Apache-2.0
"""The test callback that stops a fit mid-epoch, as a crash or Ctrl-C would (shared by the resume
tests and the distributed workers, which import it as a script's neighbour)."""

import torchcompile as tc


class Interrupt(tc.callbacks.Callback):
    """Raise KeyboardInterrupt after batch ``at[1]`` of epoch ``at[0]``, once (every process at the
    same step)."""

    def __init__(self, at):
        super().__init__()
        self.at, self.epoch = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            self.at = None
            raise KeyboardInterrupt
