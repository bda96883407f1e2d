"""export_model / load_exported: programs that run on any batch size and match predict."""

import sys
import types

import numpy as np
import pytest
import torch

import torchcompile as tc
from torchcompile.export import export_model, load_exported


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(5, 2)

    def forward(self, a, b):
        return self.a(a) + self.b(b)


@pytest.fixture
def model():
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
    )
    model = tc.Model(module, device="cpu")
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((16, 3), dtype=np.float32), rng.random((16, 2), dtype=np.float32), batch_size=8, verbose=0)
    return model


@pytest.fixture
def x32():
    return np.random.default_rng(1).random((32, 3), dtype=np.float32)


@pytest.mark.parametrize("signature", [torch.zeros(4, 3), np.zeros((4, 3), np.float32), (None, 3), torch.zeros(1, 3)])
def test_export_torch_runs_on_another_batch_size_and_matches_predict(tmp_path, model, x32, signature, capsys):
    export_model(model, tmp_path / "model.pt2", input_signature=signature)
    assert "Saved artifact at" in capsys.readouterr().out
    program = load_exported(tmp_path / "model.pt2")
    np.testing.assert_allclose(
        program(torch.from_numpy(x32)).detach().numpy(), model.predict(x32, verbose=0), atol=1e-5
    )


def test_export_restores_the_training_mode(tmp_path, model):
    model.module.train()
    export_model(model, tmp_path / "model.pt2", input_signature=(None, 3), verbose=False)
    assert model.module.training


def test_export_torch_with_several_inputs(tmp_path):
    model = tc.Model(TwoInputs(), device="cpu")
    export_model(model, tmp_path / "two.pt2", input_signature=[(None, 3), torch.zeros(4, 5)], verbose=False)
    a, b = torch.rand(32, 3), torch.rand(32, 5)
    with torch.no_grad():
        torch.testing.assert_close(load_exported(tmp_path / "two.pt2")(a, b), model.module(a, b), atol=1e-5, rtol=0)


def test_export_torch_with_keyword_inputs_and_input_specs(tmp_path):
    model = tc.Model(TwoInputs(), device="cpu")
    spec = types.SimpleNamespace(shape=(None, 5), dtype="float32")  # Keras' InputSpec, tf.TensorSpec
    export_model(model, tmp_path / "kw.pt2", input_signature={"a": (None, 3), "b": spec}, verbose=False)
    a, b = torch.rand(7, 3), torch.rand(7, 5)
    with torch.no_grad():
        torch.testing.assert_close(load_exported(tmp_path / "kw.pt2")(a=a, b=b), model.module(a, b), atol=1e-5, rtol=0)


def test_export_onnx_runs_in_onnxruntime_and_matches_predict(tmp_path, model, x32):
    for name in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(name)
    export_model(model, tmp_path / "model.onnx", format="onnx", input_signature=torch.zeros(4, 3), verbose=False)
    session = load_exported(tmp_path / "model.onnx")
    assert session.session.get_inputs()[0].shape[0] == "batch"  # a named, dynamic batch dimension
    np.testing.assert_allclose(session(x32), model.predict(x32, verbose=0), atol=1e-5)


def test_export_onnx_without_the_packages_names_the_extra(tmp_path, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"torchcompile\[onnx\]"):
        export_model(model, tmp_path / "model.onnx", format="onnx", input_signature=(None, 3))


def test_export_needs_an_input_signature(tmp_path, model):
    with pytest.raises(ValueError, match="input_signature=None"):
        export_model(model, tmp_path / "model.pt2")


def test_export_refuses_an_unknown_format(tmp_path, model):
    with pytest.raises(ValueError, match="format='tf_saved_model'"):
        export_model(model, tmp_path / "model", format="tf_saved_model", input_signature=(None, 3))


def test_load_exported_names_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_exported(tmp_path / "missing.pt2")
