import torch

from torchcompile.engine.loop import LazyLogs, mode, pythonify_logs


class _Metric:
    def __init__(self, name, value):
        self.name, self.calls, self.value = name, 0, value

    def result(self):
        self.calls += 1
        return torch.tensor(self.value)


def test_lazy_logs_compute_nothing_until_read():
    metric = _Metric("loss", 0.5)
    logs = LazyLogs(lambda: [metric])
    assert metric.calls == 0
    assert float(logs["loss"]) == 0.5 and metric.calls == 1


def test_pythonify_logs_gives_floats_and_keeps_order():
    logs = pythonify_logs({"loss": torch.tensor(0.25), "acc": torch.tensor(1.0)})
    assert logs == {"loss": 0.25, "acc": 1.0} and list(logs) == ["loss", "acc"]
    assert all(type(v) is float for v in logs.values())


def test_pythonify_logs_turns_vectors_into_arrays():
    logs = pythonify_logs({"f1": torch.tensor([0.5, 1.0])})
    assert logs["f1"].tolist() == [0.5, 1.0]


def test_mode_restores_training_mode_after_an_exception():
    module = torch.nn.Linear(2, 2).train()
    try:
        with mode(module, training=False):
            assert not module.training and not torch.is_grad_enabled()
            raise KeyError
    except KeyError:
        pass
    assert module.training and torch.is_grad_enabled()
