# SPDX-License-Identifier: Apache-2.0
"""The metric base class and the reductions every other metric builds on.

Owns: ``Metric`` (state as tensors on one device, reset in place, torchmetrics-style
aliases), ``Mean``/``Sum`` with Keras 3's sample-weight semantics, ``MeanMetricWrapper``
(a per-sample function averaged over samples), ``ForeignMetric`` (any object with
torchmetrics' ``update``/``compute``/``reset``), and the input conversion helpers.
Not: which metric a string names (``metrics/__init__.py``).

No method here reads a tensor back to the host: no ``.item()``, ``float()``,
``.tolist()``, ``.cpu()`` and no Python branch on a tensor's value.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from torchcompile.core.registry import to_snake_case
from torchcompile.core.shapes import squeeze_or_expand_to_same_rank
from torchcompile.metrics.tensors import as_tensor, divide_no_nan, resolve_dtype
from torchcompile.metrics.variables import StateVariable, initial_value

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "ForeignMetric", "as_tensor", "divide_no_nan", "resolve_dtype"]


class Metric(nn.Module):
    """Stateful accumulator. State lives on one device; no method syncs the host.

    Subclasses write ``__init__`` (calling ``add_state``, or Keras' ``add_variable``),
    ``update_state`` and ``result``. Keras' method names take Keras' argument order,
    ``update_state(y_true, y_pred, sample_weight=None)``; torchmetrics' names take
    torchmetrics' order, ``update(preds, target)``, so the metric also drops into torchmetrics
    code. A ``torch.nn.Module``: the state is registered buffers, so ``.to()`` moves it and
    ``state_dict()`` holds it.

    Args:
        name: the name shown in logs; defaults to the snake_case class name.
        dtype: the dtype of the state and the result (default float32).

    Example:
        >>> m = Mean()
        >>> m.update_state(torch.tensor([1.0, 3.0]))
        >>> m.result()
        tensor(2.)
    """

    higher_is_better: bool | None = None  # EarlyStopping(mode="auto") reads this
    _config_keys: tuple[str, ...] = ()  # constructor arguments that get_config returns

    def __init__(self, name: str | None = None, dtype: str | torch.dtype | None = None):
        super().__init__()
        self.name = name or to_snake_case(type(self).__name__)
        self.dtype = resolve_dtype(dtype)
        self._device = torch.device("cpu")
        self._defaults: dict[str, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        """The device the state lives on (and inputs are moved to)."""
        return self._device

    @property
    def variables(self) -> list[torch.Tensor]:
        """The state tensors, in the order they were added (Keras' name)."""
        return [self._buffers[name] for name in self._defaults]

    def add_state(self, name: str, default: torch.Tensor | float) -> None:
        """Register a state buffer, reset to ``default`` by ``reset_state``."""
        value = torch.as_tensor(default, dtype=self.dtype).to(self._device)
        self._defaults[name] = value
        self.register_buffer(name, value.clone())

    def add_variable(
        self,
        shape: tuple = (),
        initializer: str | float | Callable = "zeros",
        dtype: str | torch.dtype | None = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> StateVariable:
        """Keras' way of declaring state: a ``StateVariable`` (``assign``, ``assign_add``, ``.value``)
        over a registered buffer, reset to its initial value by ``reset_state``. ``aggregation`` is
        Keras' argument; every state is summed across processes."""
        name = name or f"variable_{len(self._defaults)}"
        dtype = resolve_dtype(dtype, allow_int=True) if dtype is not None else self.dtype
        value = initial_value(initializer, tuple(shape), dtype)
        buffer = f"_variable_{name}"  # so that `self.<name> = self.add_variable(name=<name>)` works
        self._defaults[buffer] = value.to(self._device)
        self.register_buffer(buffer, value.to(self._device).clone())
        return StateVariable(self, buffer, name)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state().")

    def result(self) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def reset_state(self) -> None:
        """Set every state back to its default, in place, on its device."""
        for name, default in self._defaults.items():
            self._buffers[name].copy_(default)

    def _apply(self, fn: Callable, recurse: bool = True) -> Metric:
        # .to() / .cuda() / .double(): the buffers move with nn.Module; the defaults and device follow.
        super()._apply(fn, recurse)
        self._defaults = {name: fn(default) for name, default in self._defaults.items()}
        self._device = fn(torch.empty(0, device=self._device)).device
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.update_state(*args, **kwargs)
        return self.result()

    def update(self, preds: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        """torchmetrics' name and argument order for ``update_state(target, preds)``."""
        self.update_state(target, preds, *args, **kwargs)

    def compute(self) -> torch.Tensor:
        """torchmetrics' name for ``result()``."""
        return self.result()

    def reset(self) -> None:
        """torchmetrics' name for ``reset_state()``."""
        self.reset_state()

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, plain Python values, so ``from_config`` rebuilds the metric."""
        config = {"name": self.name, "dtype": str(self.dtype).replace("torch.", "")}
        config.update({key: getattr(self, key) for key in self._config_keys})
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def _tensor(self, x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        return as_tensor(x, self._device, dtype)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


def _reduce_to_samplewise_values(
    values: torch.Tensor, sample_weight: torch.Tensor | None, reduce_fn: Callable
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Keras' ``reduce_to_samplewise_values``: weight, then reduce all but the first axis."""
    if sample_weight is not None:
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim, values_ndim = sample_weight.ndim, values.ndim
        if values_ndim > weight_ndim:
            values = reduce_fn(values, dim=list(range(weight_ndim, values_ndim)))
        sample_weight = torch.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, dim=list(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, dim=list(range(1, values.ndim)))
    return values, sample_weight


class Sum(Metric):
    """The (weighted) sum of the values seen, as ``keras.metrics.Sum``.

    Also takes the arguments of ``Metric``.

    Example:
        >>> m = Sum()
        >>> m.update_state([1.0, 3.0, 5.0, 7.0], sample_weight=[1, 1, 0, 0])
        >>> m.result()
        tensor(4.)
    """

    def __init__(self, name: str = "sum", dtype: str | torch.dtype | None = None):
        super().__init__(name=name, dtype=dtype)
        self.add_state("total", 0.0)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        values = self._tensor(values, self.dtype)
        weight = None if sample_weight is None else self._tensor(sample_weight, self.dtype)
        values, _ = _reduce_to_samplewise_values(values, weight, torch.sum)
        self.total.add_(values.sum())

    def update(self, value: Any, weight: Any = None) -> None:
        """torchmetrics' ``SumMetric.update(value)``; ``weight`` is Keras' ``sample_weight``."""
        self.update_state(value, sample_weight=weight)

    def result(self) -> torch.Tensor:
        return self.total.clone()


class Mean(Metric):
    """The (weighted) mean of the values seen, as ``keras.metrics.Mean``.

    ``update_state(loss, sample_weight=batch_size)`` adds ``loss * batch_size`` to the
    total and ``batch_size`` to the count. Also takes the arguments of ``Metric``.

    Example:
        >>> m = Mean()
        >>> m.update_state([1.0, 3.0, 5.0, 7.0], sample_weight=[1, 1, 0, 0])
        >>> m.result()
        tensor(2.)
    """

    def __init__(self, name: str = "mean", dtype: str | torch.dtype | None = None):
        super().__init__(name=name, dtype=dtype)
        self.add_state("total", 0.0)
        self.add_state("count", 0.0)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        if (
            isinstance(sample_weight, (int, float))
            and isinstance(values, torch.Tensor)
            and values.ndim == 0
            and values.dtype == self.dtype
            and values.device == self._device
        ):
            # The engine's loss tracker (a scalar weighted by the batch size): two kernels, no temporaries.
            # The buffers are read from _buffers: nn.Module.__getattr__ would cost a call each.
            buffers = self._buffers
            buffers["total"].add_(values.detach() if values.requires_grad else values, alpha=sample_weight)
            buffers["count"].add_(sample_weight)
            return
        values = self._tensor(values, self.dtype)
        weight = None if sample_weight is None else self._tensor(sample_weight, self.dtype)
        values, weight = _reduce_to_samplewise_values(values, weight, torch.mean)
        buffers = self._buffers
        buffers["total"].add_(values.sum())
        if weight is not None:
            buffers["count"].add_(weight.sum())
        else:
            buffers["count"].add_(values.shape[0] if values.ndim >= 1 else 1)

    def update(self, value: Any, weight: Any = None) -> None:
        """torchmetrics' ``MeanMetric.update(value, weight)``: ``update_state(value, weight)``."""
        self.update_state(value, sample_weight=weight)

    def result(self) -> torch.Tensor:
        return divide_no_nan(self.total, self.count)


class MeanMetricWrapper(Mean):
    """The mean over samples of a per-sample function ``fn(y_true, y_pred, **fn_kwargs)``.

    Args:
        fn: returns one value per sample (or per element; extra axes are averaged).
        name: defaults to ``"mean_metric_wrapper"``, as Keras.
        dtype: the state's dtype (default float32).
        **fn_kwargs: passed on to ``fn``.

    Example:
        >>> m = MeanMetricWrapper(lambda t, p: (t - p).abs(), name="mae")
        >>> m.update_state([0.0, 1.0], [1.0, 1.0])
        >>> m.result()
        tensor(0.5000)
    """

    def __init__(self, fn: Callable, name: str | None = None, dtype: str | torch.dtype | None = None, **fn_kwargs: Any):
        super().__init__(name=name or "mean_metric_wrapper", dtype=dtype)
        self._fn = fn
        self._fn_kwargs = fn_kwargs

    update = Metric.update  # (preds, target), not Mean's (value, weight)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = self._tensor(y_pred)
        y_true = self._tensor(y_true)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if type(self) is MeanMetricWrapper:
            config["fn"] = self._fn
        return {**config, **self._fn_kwargs}


class ForeignMetric(Metric):
    """Adapts an object with torchmetrics' ``update``/``compute``/``reset`` (a real
    ``torchmetrics.Metric`` works as is) to the ``Metric`` interface.

    ``update_state(y_true, y_pred)`` calls ``obj.update(y_pred, y_true)``, torchmetrics'
    order. The name is ``obj.name`` when that is a string, else the snake_case class name.

    Args:
        obj: the wrapped metric object.
    """

    def __init__(self, obj: Any):
        missing = [m for m in ("update", "compute", "reset") if not callable(getattr(obj, m, None))]
        if missing:
            raise TypeError(
                f"ForeignMetric wraps objects with torchmetrics' update/compute/reset "
                f"methods; {type(obj).__name__} lacks {', '.join(missing)}. "
                f"Received: obj={obj!r}"
            )
        own_name = getattr(obj, "name", None)
        super().__init__(name=own_name if isinstance(own_name, str) else to_snake_case(type(obj).__name__))
        self.obj = obj
        higher = getattr(obj, "higher_is_better", None)
        self.higher_is_better = higher if isinstance(higher, bool) else None

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if sample_weight is not None:
            raise ValueError(
                f"The wrapped metric {self.name!r} ({type(self.obj).__name__}) takes no "
                "sample_weight; pass it in `metrics=` rather than `weighted_metrics=`. "
                "Received: sample_weight=<not None>"
            )
        self.obj.update(self._foreign(y_pred), self._foreign(y_true))

    def result(self) -> torch.Tensor:
        value = self.obj.compute()
        return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)

    def reset_state(self) -> None:
        self.obj.reset()

    def _apply(self, fn: Callable, recurse: bool = True) -> ForeignMetric:
        super()._apply(fn, recurse)  # a torchmetrics metric is an nn.Module: a child, moved with us
        if not isinstance(self.obj, nn.Module) and callable(getattr(self.obj, "to", None)):
            moved = self.obj.to(self._device)
            self.obj = moved if moved is not None else self.obj
        return self

    def get_config(self) -> dict[str, Any]:
        return {"obj": self.obj}

    def _foreign(self, x: Any) -> Any:
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, device=self._device)
