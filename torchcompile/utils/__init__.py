# SPDX-License-Identifier: Apache-2.0
"""Keras' ``keras.utils`` names that a port reaches for (one module each underneath)."""

from __future__ import annotations

__all__: list[str] = []
