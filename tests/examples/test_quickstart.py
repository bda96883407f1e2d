# SPDX-License-Identifier: Apache-2.0
"""examples/quickstart.py: it learns, and saves its learning curves as a PNG when asked."""

from __future__ import annotations

import pytest

# Chance is 0.33; 5 epochs reach about 0.95.
REDUCED_VAL_ACCURACY_BAR = 0.85


def test_quickstart_reduced_mode_learns_and_saves_plot(load_example, tmp_path):
    pytest.importorskip("matplotlib").use("Agg")
    import matplotlib.image
    import matplotlib.pyplot as plt

    path = tmp_path / "quickstart_history.png"
    accuracy = load_example("quickstart").main(epochs=2, verbose=0, plot_path=str(path))
    plt.close("all")
    assert accuracy > REDUCED_VAL_ACCURACY_BAR
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(str(path)).ndim == 3
