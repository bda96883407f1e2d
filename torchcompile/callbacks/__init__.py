# SPDX-License-Identifier: Apache-2.0
"""Keras' callbacks: hooks into fit, evaluate and predict."""

from torchcompile.callbacks.backup_and_restore import BackupAndRestore
from torchcompile.callbacks.callback import Callback
from torchcompile.callbacks.callback_list import CallbackList
from torchcompile.callbacks.csv_logger import CSVLogger
from torchcompile.callbacks.early_stopping import EarlyStopping
from torchcompile.callbacks.history import History
from torchcompile.callbacks.lambda_callback import LambdaCallback
from torchcompile.callbacks.learning_rate_scheduler import LearningRateScheduler
from torchcompile.callbacks.model_checkpoint import ModelCheckpoint
from torchcompile.callbacks.monitor import MonitorCallback
from torchcompile.callbacks.progbar_logger import ProgbarLogger
from torchcompile.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from torchcompile.callbacks.swap_ema_weights import SwapEMAWeights
from torchcompile.callbacks.tensorboard import TensorBoard
from torchcompile.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "BackupAndRestore",
    "CSVLogger",
    "EarlyStopping",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "TensorBoard",
    "SwapEMAWeights",
]
