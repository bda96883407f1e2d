import pytest
import torch

from torchcompile.engine.device import resolve_device, to_device


def test_resolve_device_auto_picks_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_resolve_device_accepts_torch_device():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_resolve_device_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA was requested"):
        resolve_device("cuda")


def test_resolve_device_unknown_string_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_to_device_returns_tensors_already_there_unchanged():
    x = torch.ones(3)
    assert to_device((x, {"a": x}), torch.device("cpu"))[0] is x


@pytest.mark.gpu
def test_to_device_moves_nested_batches_to_cuda():
    batch = (torch.ones(2), {"y": torch.zeros(2)}, None)
    moved = to_device(batch, torch.device("cuda"))
    assert moved[0].is_cuda and moved[1]["y"].is_cuda and moved[2] is None
