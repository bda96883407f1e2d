# SPDX-License-Identifier: Apache-2.0
"""Keras' callbacks: hooks into fit, evaluate and predict."""
from torchcompile.callbacks.callback import Callback, CallbackList
from torchcompile.callbacks.history import History
from torchcompile.callbacks.progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
