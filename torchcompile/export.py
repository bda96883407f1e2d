# SPDX-License-Identifier: Apache-2.0
"""Exporting a model for inference (Keras' ``model.export``) and loading what was exported.

Owns: turning ``input_signature`` into example inputs with a dynamic batch dimension, the
``"torch"`` format (a ``torch.export`` program, ``.pt2``) and the ``"onnx"`` format (torch's
dynamo-based ONNX exporter), and ``load_exported``. Models are duck-typed through public
attributes (``module``, ``device``); this module imports no ``Model``. Not: saving weights or
whole models for training (saving.py).
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from typing import Any, Callable

import numpy as np
import torch

from torchcompile.core import process
from torchcompile.saving import atomic_write

__all__ = ["export_model", "load_exported", "FORMATS"]

FORMATS = ("torch", "onnx")
_EXAMPLE_BATCH = 2  # torch.export treats sizes 0 and 1 as constants, so a dynamic batch needs 2 or more


def export_model(
    model: Any,
    filepath: str | os.PathLike,
    format: str = "torch",
    verbose: bool | None = None,
    input_signature: Any = None,
    **kwargs: Any,
) -> None:
    """Export ``model.module`` for inference, as Keras' ``model.export``; the batch dimension stays dynamic.

    The module runs in eval mode, without gradients, on ``model.device``, as it is (no mixed-precision
    autocast). The program exported from an example of batch 4 runs on any batch size. Only rank 0
    writes under ``torchrun``.

    Args:
        model: a ``tc.Model`` (or any object with ``module`` and ``device``; a bare ``nn.Module`` too).
        filepath: where to write: ``model.pt2`` for ``"torch"``, ``model.onnx`` for ``"onnx"``.
        format: ``"torch"``: a ``torch.export`` program written with ``torch.export.save``;
            ``"onnx"``: ONNX through ``torch.onnx.export(dynamo=True)`` (needs the ``onnx`` and
            ``onnxscript`` packages: ``pip install torchcompile[onnx]``).
        verbose: print where the artifact went and how to load it (Keras prints by default; False
            silences it).
        input_signature: what the module is called with. An example tensor or NumPy array (its first
            dimension is the batch); a shape such as ``(None, 28, 28)`` where ``None`` marks dynamic
            dimensions (float32 zeros are used); an object with ``shape`` and ``dtype`` (Keras'
            ``InputSpec``, ``tf.TensorSpec``); a list or tuple of these for ``module(*inputs)``, or a
            dict for ``module(**inputs)``. Required: the module's input shapes are not recorded.
        **kwargs: passed to ``torch.export.export`` (``"torch"``, e.g. ``strict=True``) or to
            ``torch.onnx.export`` (``"onnx"``, e.g. ``opset_version=18``).

    Example:
        >>> model.export("model.pt2", input_signature=torch.zeros(4, 3))
        >>> tc.load_exported("model.pt2")(torch.zeros(32, 3)).shape
        torch.Size([32, 1])
    """
    if format not in FORMATS:
        raise ValueError(
            "Unknown export format. torchcompile exports 'torch' (a torch.export program, .pt2) and 'onnx'. "
            f"Received: format={format!r}"
        )
    if format == "onnx":
        _require_onnx()
    module = getattr(model, "module", model)
    device = getattr(model, "device", None) or _device_of(module)
    args, example_kwargs, dynamic_shapes = _examples(input_signature, device)
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            if format == "torch":
                program = torch.export.export(
                    module, args, example_kwargs or None, dynamic_shapes=dynamic_shapes, **{"strict": False, **kwargs}
                )
                write = lambda f: torch.export.save(program, f)  # noqa: E731
            else:
                onnx_program = torch.onnx.export(
                    module,
                    args,
                    kwargs=example_kwargs or None,
                    dynamic_shapes=dynamic_shapes,
                    **{"dynamo": True, "verbose": False, **kwargs},
                )
                write = lambda f: f.write(onnx_program.model_proto.SerializeToString())  # noqa: E731
    finally:
        module.train(was_training)
    if process.is_rank_zero():
        atomic_write(filepath, write)
        if verbose is not False:
            path = os.fspath(filepath)
            print(f"Saved artifact at '{path}'. Load it with tc.load_exported('{path}').")


def load_exported(filepath: str | os.PathLike, providers: list | None = None) -> Callable[..., Any]:
    """Load what ``export_model`` (``model.export``) wrote, as a callable.

    A ``.pt2`` program comes back as ``torch.export.load(filepath).module()``: a ``torch.nn.Module``
    taking and returning tensors, as the original module does. An ONNX file comes back as a callable
    over ``onnxruntime.InferenceSession(filepath)`` that takes tensors or arrays, positionally in the
    module's order or by keyword, and returns NumPy arrays (one array for a single output, else a
    list); its ``session`` attribute is the onnxruntime session.

    Args:
        filepath: the exported file.
        providers: onnxruntime's execution providers (default: ``["CPUExecutionProvider"]``).
    """
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise ValueError(f"No exported model at this path: the file does not exist. Received: filepath={path!r}")
    if zipfile.is_zipfile(path):  # torch.export.save writes a zip archive; ONNX is a protobuf
        return torch.export.load(path).module()
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "Running an exported ONNX model needs onnxruntime: `pip install torchcompile[onnx]` "
            f"(or `pip install onnxruntime`). Received: filepath={path!r}"
        ) from error
    return OnnxFunction(onnxruntime.InferenceSession(path, providers=providers or ["CPUExecutionProvider"]))


class OnnxFunction:
    """Calls an onnxruntime session like the module: ``f(x)`` or ``f(a, b)`` or ``f(name=x)``."""

    def __init__(self, session: Any):
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        feeds = dict(zip(self.input_names, args))
        feeds.update(kwargs)
        outputs = self.session.run(None, {name: _to_numpy(value) for name, value in feeds.items()})
        return outputs[0] if len(outputs) == 1 else outputs


def _examples(signature: Any, device: torch.device) -> tuple[tuple, dict, Any]:
    """``(args, kwargs, dynamic_shapes)`` for torch.export from ``input_signature``; one shared batch Dim."""
    if signature is None:
        raise ValueError(
            "export needs to know what the module is called with: pass input_signature, an example input "
            "(a tensor of any batch size) or a shape with None for the batch, e.g. (None, 28, 28). "
            "Received: input_signature=None"
        )
    if isinstance(signature, dict):
        names, specs = list(signature), list(signature.values())
    else:
        several = isinstance(signature, (list, tuple)) and not _is_shape(signature)
        specs = list(signature) if several else [signature]
        names = [f"input{i}" for i in range(len(specs))]
    specs = [torch.from_numpy(s) if isinstance(s, np.ndarray) else s for s in specs]
    # Every input gets the same example batch: the largest example tensor's, and at least 2.
    size = max([_EXAMPLE_BATCH] + [s.shape[0] for s in specs if isinstance(s, torch.Tensor) and s.dim()])
    batch = torch.export.Dim("batch", min=1)
    pairs = [_example(spec, device, batch, size, name) for spec, name in zip(specs, names)]
    if isinstance(signature, dict):
        return (), {n: t for n, (t, _) in zip(names, pairs)}, {n: d for n, (_, d) in zip(names, pairs)}
    return tuple(t for t, _ in pairs), {}, tuple(d for _, d in pairs)


def _example(spec: Any, device: torch.device, batch: Any, size: int, name: str) -> tuple[torch.Tensor, Any]:
    """One example tensor of batch ``size`` on ``device``, and its dynamic dimensions (the batch, any ``None``)."""
    if isinstance(spec, torch.Tensor):
        tensor, dynamic = spec.to(device), [0] if spec.dim() else []
        if tensor.dim() and tensor.shape[0] != size:  # a batch of 1 would be baked in as a constant
            tensor = tensor[torch.arange(size, device=device) % tensor.shape[0]]
    elif _is_shape(spec) or hasattr(spec, "shape"):
        shape = tuple(spec) if _is_shape(spec) else tuple(spec.shape)
        dtype = _torch_dtype(getattr(spec, "dtype", None), name)
        dynamic = [i for i, n in enumerate(shape) if n is None or i == 0]
        sizes = [size if i == 0 else _EXAMPLE_BATCH + i if n is None else int(n) for i, n in enumerate(shape)]
        tensor = torch.zeros(sizes, dtype=dtype, device=device)
    else:
        raise ValueError(
            "Each input_signature entry must be a tensor, a NumPy array, a shape (None for dynamic sizes) "
            f"or an object with shape and dtype. Received: input_signature entry {name}={spec!r}"
        )
    dims = {i: batch if i == 0 else torch.export.Dim(f"{name}_dim{i}", min=1) for i in dynamic}
    return tensor, (dims or None)


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, (tuple, list, torch.Size))
        and len(value) > 0
        and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
    )


def _torch_dtype(dtype: Any, name: str) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    text = str(getattr(dtype, "name", dtype)).replace("torch.", "")
    found = getattr(torch, text, None)
    if not isinstance(found, torch.dtype):
        raise ValueError(f"Unknown dtype in input_signature ({name}). Received: dtype={dtype!r}")
    return found


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _device_of(module: torch.nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _require_onnx() -> None:
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"format='onnx' needs the {' and '.join(missing)} package(s), which torch's ONNX exporter uses. "
            f"Install them with `pip install torchcompile[onnx]`. Received: format='onnx'"
        )
