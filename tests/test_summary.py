# SPDX-License-Identifier: Apache-2.0
import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile.summary import count_parameters, readable_size


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(2, 4)
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x, z):
        return (self.a(x) + self.b(z)) * self.scale


def lines_of(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return lines


def mlp():
    return tc.Model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2)), device="cpu")


def test_summary_lists_layers_with_parameter_counts():
    lines = lines_of(mlp())
    assert lines[0] == 'Model: "Sequential"'
    assert "Layer (type)" in lines[2] and "Output Shape" in lines[2] and "Param #" in lines[2]
    rows = [line for line in lines if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["0 (Linear)", "1 (ReLU)", "2 (BatchNorm1d)", "3 (Linear)"]
    assert [r.split("│")[3].strip() for r in rows] == ["40", "0", "16", "18"]


def test_summary_counts_buffers_and_frozen_parameters_as_non_trainable():
    model = mlp()
    model.module[0].bias.requires_grad_(False)
    lines = lines_of(model)
    # 40 + 16 + 18 = 74 parameters (8 frozen) + BatchNorm's running mean/var (16) and counter (1, int64).
    assert " Total params: 91 (368.00 B)" in lines
    assert " Trainable params: 66 (264.00 B)" in lines
    assert " Non-trainable params: 25 (104.00 B)" in lines


def test_summary_shows_unknown_shapes_until_the_first_batch_then_the_recorded_ones():
    model = mlp()
    model.compile(optimizer="sgd", loss="mse")
    assert all("?" in line for line in lines_of(model) if line.startswith("│"))
    model.fit(np.zeros((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    shapes = [line.split("│")[2].strip() for line in lines_of(model) if line.startswith("│")]
    assert shapes == ["(None, 8)", "(None, 8)", "(None, 8)", "(None, 2)"]
    assert all(not m._forward_hooks for m in model.module.modules())  # the one-shot hooks are gone
    assert any(line.startswith(" Optimizer params:") for line in lines_of(model)) is False  # SGD keeps no state


def test_summary_input_shape_runs_one_forward_on_zeros():
    model = mlp()
    model.module.train()
    shapes = [line.split("│")[2].strip() for line in lines_of(model, input_shape=(4,)) if line.startswith("│")]
    assert shapes[-1] == "(None, 2)" and model.module.training
    assert model.module[2].num_batches_tracked.item() == 0  # ran in eval mode


def test_summary_takes_one_input_shape_per_input_and_lists_own_parameters():
    lines = lines_of(tc.Model(TwoInputs(), device="cpu"), input_shape=[(3,), (2,)])
    rows = [line for line in lines if line.startswith("│")]
    assert "(None, 4)" in rows[0] and "(parameters of TwoInputs)" in rows[-1] and rows[-1].split("│")[3].strip() == "4"


def test_summary_expand_nested_indents_submodules():
    module = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), nn.Linear(2, 1))
    rows = [
        line.split("│")[1]
        for line in lines_of(tc.Model(module, device="cpu"), expand_nested=True)
        if line.startswith("│")
    ]
    assert [r.rstrip() for r in rows] == [" 0 (Sequential)", "   0 (Linear)", "   1 (Tanh)", " 1 (Linear)"]


def test_summary_prints_optimizer_state_size_after_training():
    model = mlp()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 4), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
    assert " Optimizer params: 148 (592.00 B)" in lines_of(model)


@pytest.mark.parametrize("nbytes, text", [(440, "440.00 B"), (1536, "1.50 KB"), (3 * 1024**2, "3.00 MB")])
def test_readable_size_as_keras(nbytes, text):
    assert readable_size(nbytes) == text


def test_count_parameters_counts_shared_parameters_once():
    layer = nn.Linear(2, 2)
    assert count_parameters(nn.Sequential(layer, layer))["total"] == (6, 24)


def test_summary_after_fit_shows_output_shapes(rng):
    import torchcompile as tc

    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)), device="cpu")
    model.compile("sgd", "mse")
    model.fit(rng.normal(size=(6, 4)).astype("float32"), np.zeros((6, 2), "float32"), batch_size=3, verbose=0)
    lines = []
    model.summary(print_fn=lines.append)
    assert any("(3, 8)" in line or "(None, 8)" in line or "8)" in line for line in lines if "Linear" in line)
    assert not any("?" in line for line in lines if "Linear" in line)


class OwnNetwork(tc.Model):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(4, 8), nn.Linear(8, 2)

    def call(self, x):
        return self.out(torch.relu(self.hidden(x)))


def test_summary_after_fit_of_a_model_that_is_its_own_network_shows_shapes_and_leaves_no_hooks(rng):
    # Its call() runs without its own forward hook, so the shape hooks end at the next forward instead.
    model = OwnNetwork()
    model.compile("sgd", "mse")
    model.fit(rng.normal(size=(6, 4)).astype("float32"), np.zeros((6, 2), "float32"), batch_size=3, verbose=0)
    assert not model.hidden._forward_hooks and not model.out._forward_hooks and not model._forward_hooks
    lines = lines_of(model)
    assert any("(None, 8)" in line for line in lines if "hidden" in line)
