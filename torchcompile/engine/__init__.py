# SPDX-License-Identifier: Apache-2.0
"""Internal machinery of torchcompile; nothing here is public API."""
