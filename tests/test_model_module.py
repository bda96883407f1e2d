# SPDX-License-Identifier: Apache-2.0
"""tc.Model as a torch.nn.Module, Keras' names on it, and losses and metrics as modules."""

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc


@pytest.fixture
def data(rng):
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _fitted(data, optimizer="adam"):
    torch.manual_seed(0)
    model = tc.Model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), device="cpu")
    model.compile(optimizer, tc.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(*data, batch_size=16, epochs=1, verbose=0)
    return model


def test_model_is_an_nn_module_with_the_module_as_a_registered_child():
    module = nn.Linear(4, 2)
    model = tc.Model(module, device="cpu")
    assert isinstance(model, nn.Module) and model.module is module
    assert dict(model.named_children())["module"] is module
    assert [p for p in model.parameters()] == [module.weight, module.bias]
    assert list(model.state_dict()) == ["module.weight", "module.bias"]


def test_model_call_forwards_to_the_module():
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    x = torch.randn(3, 4)
    torch.testing.assert_close(model(x), model.module(x))


def test_model_train_eval_and_zero_grad_reach_the_module():
    model = tc.Model(nn.Sequential(nn.Linear(4, 2), nn.Dropout()), device="cpu")
    assert not model.eval().module[1].training
    assert model.train().module[1].training
    model(torch.randn(3, 4)).sum().backward()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_losses_and_metrics_are_nn_modules():
    assert isinstance(tc.losses.MeanSquaredError(), nn.Module)
    assert isinstance(tc.metrics.Mean(), nn.Module)


def test_metric_state_is_registered_buffers_that_move_with_to():
    metric = tc.metrics.Mean()
    metric.update_state(torch.tensor([1.0, 3.0]))
    assert set(dict(metric.named_buffers())) == {"total", "count"}
    assert metric.state_dict()["total"].item() == 4.0
    metric.double()
    assert metric.total.dtype == torch.float64 and metric.result().item() == 2.0
    metric.reset_state()
    assert metric.count.item() == 0.0


def test_model_double_moves_weights_optimizer_and_metric_state(data):
    model = _fitted(data)
    model.double()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    state = model.optimizer.state[next(model.parameters())]
    assert state["exp_avg"].dtype == torch.float64
    assert all(v.dtype == torch.float64 for m in model.metrics for v in m.variables)
    history = model.fit(data[0].astype("float64"), data[1], batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.gpu
def test_model_to_cuda_moves_weights_optimizer_and_metric_state_and_device(data):
    model = _fitted(data)
    model.to("cuda")
    assert model.device.type == "cuda"
    assert all(p.is_cuda for p in model.parameters())
    assert model.optimizer.state[next(model.parameters())]["exp_avg"].is_cuda
    assert all(v.is_cuda for m in model.metrics for v in m.variables)
    model.fit(*data, batch_size=16, epochs=1, verbose=0)


def test_plain_torch_weights_load_with_load_weights_and_back(tmp_path):
    torch.manual_seed(0)
    source, target = nn.Linear(4, 2), nn.Linear(4, 2)
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    model = tc.Model(target, device="cpu")
    model.load_weights(tmp_path / "plain.pt")
    torch.testing.assert_close(target.weight, source.weight)
    model.save_weights(tmp_path / "ours.pt")
    bare = nn.Linear(4, 2)
    bare.load_state_dict(torch.load(tmp_path / "ours.pt", weights_only=True))
    torch.testing.assert_close(bare.weight, source.weight)


def test_model_keras_weight_names_split_trainable_and_not():
    module = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    module[0].bias.requires_grad_(False)
    model = tc.Model(module, device="cpu")
    assert [w.shape for w in model.trainable_weights] == [(3, 4), (3,), (3,)]
    assert {tuple(w.shape) for w in model.non_trainable_weights} == {(3,)}
    assert len(model.non_trainable_weights) == 3  # the frozen bias, BatchNorm's running mean and variance
    assert model.count_params() == 12 + 3 + 3 + 3 + 3 + 3


def test_model_layers_and_get_layer():
    model = tc.Sequential([nn.Linear(4, 3), nn.ReLU()], device="cpu")
    assert [type(layer) for layer in model.layers] == [nn.Linear, nn.ReLU]
    assert model.get_layer(index=1) is model.module[1]
    assert model.get_layer("0") is model.module[0]
    with pytest.raises(ValueError, match="No layer named 'dense'"):
        model.get_layer("dense")


def test_sequential_add_appends_a_layer():
    model = tc.Sequential([nn.Linear(4, 3)], device="cpu")
    model.add(nn.ReLU())
    assert len(model.layers) == 2 and isinstance(model.module[1], nn.ReLU)


def test_model_names_default_to_the_snake_case_class_name_made_unique():
    class NamingProbe(tc.Model):
        pass

    first, second = NamingProbe(nn.Linear(1, 1), device="cpu"), NamingProbe(nn.Linear(1, 1), device="cpu")
    assert first.name == "naming_probe" and second.name == "naming_probe_1"
    assert tc.Model(nn.Linear(1, 1), device="cpu", name="mine").name == "mine"


class _TakesTraining(nn.Module):
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x, training=None):
        self.seen.append(training)
        return x


def test_model_call_passes_training_to_a_forward_that_takes_it():
    module = _TakesTraining()
    tc.Model(module, device="cpu")(torch.zeros(1), training=True)
    assert module.seen == [True]


def test_model_call_drops_training_and_switches_mode_as_keras_torch_wrapper():
    model = tc.Model(nn.Dropout(), device="cpu")
    model(torch.zeros(1), training=False)
    assert not model.module.training
    model(torch.zeros(1), training=True)
    assert model.module.training


def test_model_without_module_is_its_own_network_through_call():
    class Net(tc.Model):
        def __init__(self):
            super().__init__(device="cpu")
            self.dense = nn.Linear(4, 1)

        def call(self, x):
            return self.dense(x)

    model = Net()
    model.compile("sgd", "mse")
    history = model.fit(np.ones((8, 4), "float32"), np.zeros((8, 1), "float32"), epochs=2, verbose=0)
    assert model.module is model and len(history.history["loss"]) == 2


def test_compile_takes_keras_positional_order():
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile("sgd", "mse", None, ["mae"])  # optimizer, loss, loss_weights, metrics
    logs = model.evaluate(np.ones((4, 4), "float32"), np.zeros((4, 2), "float32"), verbose=0, return_dict=True)
    assert list(logs) == ["loss", "mae"]


def test_compile_run_eagerly_turns_jit_compile_and_cuda_graphs_off():
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile("sgd", "mse", run_eagerly=True, jit_compile=True, cuda_graph=True)
    assert not model.jit_compile and not model.cuda_graph
    assert model.get_compile_config()["run_eagerly"]


def test_fit_trains_with_an_optimizer_whose_step_needs_a_closure(data):
    torch.manual_seed(0)
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile(
        torch.optim.LBFGS(model.parameters(), lr=0.5), tc.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(*data, batch_size=64, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_metric_add_variable_gives_keras_state_with_assign_and_reset():
    class TruePositives(tc.metrics.Metric):
        def __init__(self, name="tp"):
            super().__init__(name=name)
            self.true_positives = self.add_variable(shape=(), initializer="zeros", name="true_positives")

        def update_state(self, y_true, y_pred, sample_weight=None):
            hits = (torch.as_tensor(y_pred).argmax(-1) == torch.as_tensor(y_true)).float().sum()
            self.true_positives.assign_add(hits)

        def result(self):
            return self.true_positives.value

    metric = TruePositives()
    metric.update_state(torch.tensor([0, 1]), torch.tensor([[0.9, 0.1], [0.8, 0.2]]))
    assert metric.result().item() == 1.0 and metric.variables[0] is metric.true_positives.value
    metric.reset_state()
    assert metric.result().item() == 0.0
    metric.true_positives.assign(5.0)
    metric.true_positives.assign_sub(2.0)
    assert metric.result().item() == 3.0
