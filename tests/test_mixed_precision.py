# SPDX-License-Identifier: Apache-2.0
"""tc.mixed_precision: Keras' policy names, autocast in the steps, float32 master weights and
metrics, and a float16 loss scaler that skips overflowing steps without reading the host."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from torchcompile import mixed_precision


@pytest.fixture(autouse=True)
def _restore_global_policy():
    yield
    mixed_precision.set_global_policy("float32")


@pytest.fixture
def data(rng):
    x = rng.normal(size=(256, 8)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


class _RecordsDtype(nn.Module):
    """A Linear that remembers the dtype its matmul produced (autocast's doing)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 2)
        self.seen = None

    def forward(self, x):
        out = self.linear(x)
        self.seen = out.dtype
        return out


def _model(policy=None, optimizer="adam", device="cpu"):
    model = tc.Model(_RecordsDtype(), device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.compile(
            optimizer,
            tc.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            dtype_policy=policy,
        )
    return model


@pytest.mark.parametrize(
    "name, compute", [("float32", "float32"), ("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")]
)
def test_policy_names_and_dtypes_follow_keras(name, compute):
    policy = mixed_precision.Policy(name)
    assert (policy.name, policy.compute_dtype, policy.variable_dtype) == (name, compute, "float32")


def test_unknown_policy_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="mixed_bfloat16.*Received: name='mixed_float32'"):
        mixed_precision.Policy("mixed_float32")


def test_compile_reads_the_global_policy():
    mixed_precision.set_global_policy("mixed_bfloat16")
    assert tc.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert _model().dtype_policy.name == "mixed_bfloat16"


def test_bfloat16_runs_forward_in_bfloat16_and_keeps_float32_weights_and_metrics(data):
    model = _model("mixed_bfloat16")
    history = model.fit(*data, epochs=2, verbose=0)
    assert model.module.seen == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    assert all(v.dtype == torch.float32 for m in model.metrics for v in m.variables)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_bfloat16_losses_track_float32_within_bfloat16_rounding(data):
    torch.manual_seed(0)
    full = _model("float32").fit(*data, epochs=2, verbose=0).history["loss"]
    torch.manual_seed(0)
    mixed = _model("mixed_bfloat16").fit(*data, epochs=2, verbose=0).history["loss"]
    np.testing.assert_allclose(mixed, full, rtol=0.03)


def test_float16_on_cpu_warns_and_still_trains(data):
    model = tc.Model(nn.Linear(8, 2), device="cpu")
    with pytest.warns(RuntimeWarning, match="mixed_bfloat16"):
        model.compile("adam", tc.losses.SparseCategoricalCrossentropy(from_logits=True), dtype_policy="mixed_float16")
    history = model.fit(*data, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_float16_scaler_uses_the_fused_kernel_and_skips_an_overflowing_step_without_a_host_read(data, monkeypatch):
    model = _model("mixed_float16", optimizer="adam")
    assert model.optimizer._step_supports_amp_scaling and model.optimizer.param_groups[0]["fused"]
    model.fit(*data, epochs=1, verbose=0)  # builds the loss and metrics; the first batch's checks read labels
    before = [p.detach().clone() for p in model.module.parameters()]
    reads = []
    for name in ("item", "__float__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, lambda self, name=name: reads.append(name) or 0.0)
    huge = torch.from_numpy(data[0][:32]) * 1e4  # the scaled loss overflows float16's gradients
    model.train_step((huge, torch.from_numpy(data[1][:32]), None))
    monkeypatch.undo()
    # The fused step must skip the whole update, with no host read.
    assert all(torch.equal(b, p) for b, p in zip(before, model.module.parameters()))
    assert reads == []


@pytest.mark.gpu
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_on_cuda_trains_without_per_step_syncs(policy, data):
    model = _model(policy, device="cuda")
    model.fit(*data, epochs=1, verbose=0)  # first batch: the one-off input checks sync
    torch.cuda.set_sync_debug_mode("error")
    try:
        for start in range(0, 128, 32):
            batch = tuple(torch.as_tensor(a[start : start + 32], device="cuda") for a in data) + (None,)
            model.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert model.module.seen == mixed_precision.Policy(policy).autocast_dtype
