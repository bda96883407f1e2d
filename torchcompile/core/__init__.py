# SPDX-License-Identifier: Apache-2.0
"""The leaf package: imports nothing of torchcompile's, and everyone may import it.

Owns: the id registry and ``to_snake_case`` (registry.py), nested-structure helpers
(tree.py), Keras' squeeze-or-expand shape rule (shapes.py) and the process rank helpers
(process.py).
"""
