# SPDX-License-Identifier: Apache-2.0
"""gradient_accumulation_steps through fit, train_on_batch and BackupAndRestore.

Against Keras 3 (the same Dense layer, data and schedule, 3 epochs of 7 batches: N = 2 and 3
leave partial cycles that carry into the next epoch); N batches of B against one batch of N*B;
a resume mid-accumulation against the uninterrupted run, bit for bit; no host read per step;
a float16 overflow on one micro-batch skipping the whole update; compile's checks.
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc
from tests.integration.interrupt import Interrupt
from tests.integration.test_host_syncs import count_reads  # noqa: F401 - the fixture
from torchcompile.engine import accumulation

pytestmark = pytest.mark.slow

SAMPLES, FEATURES, UNITS, BATCH, EPOCHS = 103, 5, 3, 16, 3  # 7 batches an epoch, the last one of 7 samples


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = (x @ rng.normal(size=(FEATURES, UNITS)) + 0.1 * rng.normal(size=(SAMPLES, UNITS))).astype("float32")
    return x, y


def _kernel_and_bias(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(FEATURES, UNITS)).astype("float32") * 0.5, rng.normal(size=(UNITS,)).astype("float32")


def _ours(optimizer, **compile_kwargs):
    kernel, bias = _kernel_and_bias()
    linear = nn.Linear(FEATURES, UNITS)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))
    model = tc.Model(linear, device="cpu")
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    return model


def _weights(model):
    return [p.detach().clone() for p in model.module.parameters()]


# ---------------------------------------------------------------- against Keras 3
KERAS_CASES = {
    "sgd-clipnorm-schedule": (
        "SGD",
        {"momentum": 0.9, "clipnorm": 0.5},
        ("ExponentialDecay", {"initial_learning_rate": 0.05, "decay_steps": 4, "decay_rate": 0.7}),
    ),
    "adam-weight_decay-schedule": (
        "Adam",
        {"weight_decay": 0.05},
        ("PiecewiseConstantDecay", {"boundaries": [5, 11], "values": [0.05, 0.02, 0.01]}),
    ),
    "adamw-global_clipnorm": ("AdamW", {"learning_rate": 0.02, "weight_decay": 0.1, "global_clipnorm": 1.0}, None),
}


@pytest.mark.keras
@pytest.mark.parametrize("steps", [2, 3])
@pytest.mark.parametrize("case", sorted(KERAS_CASES))
def test_fit_with_accumulation_matches_keras_over_three_epochs(case, steps):
    keras = pytest.importorskip("tests.keras_oracle").keras
    name, kwargs, schedule = KERAS_CASES[case]
    x, y = _data()
    kernel, bias = _kernel_and_bias()

    def optimizer(module):
        rate = {} if schedule is None else {"learning_rate": getattr(module.schedules, schedule[0])(**schedule[1])}
        return getattr(module, name)(**kwargs, **rate, gradient_accumulation_steps=steps)

    k_model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(UNITS)])
    k_model.layers[0].set_weights([kernel, bias])
    k_model.compile(optimizer=optimizer(keras.optimizers), loss="mse")
    t_model = _ours(optimizer(tc.optimizers))
    fit = dict(batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
    theirs = k_model.fit(x, y, **fit).history
    ours = t_model.fit(x, y, **fit).history
    k_kernel, k_bias = k_model.layers[0].get_weights()
    moved = np.abs(k_kernel - kernel).max()
    assert moved > 1e-2  # the weights did travel
    np.testing.assert_allclose(t_model.module.weight.detach().numpy().T, k_kernel, rtol=1e-5, atol=1e-5 * moved)
    np.testing.assert_allclose(t_model.module.bias.detach().numpy(), k_bias, rtol=1e-5, atol=1e-5 * moved)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    assert t_model.optimizer.param_groups[0]["iterations"] == int(k_model.optimizer.iterations)
    assert t_model.optimizer.param_groups[0]["accumulated_steps"] == 7 * EPOCHS % steps


# ---------------------------------------------------------------- N batches of B == one batch of N*B
@pytest.mark.parametrize("steps", [2, 4])
def test_accumulating_n_batches_equals_one_batch_n_times_larger(steps):
    x, y = _data()
    x, y = x[: 8 * steps * 3], y[: 8 * steps * 3]  # 3 updates
    small = _ours(tc.optimizers.SGD(learning_rate=0.1, momentum=0.5, gradient_accumulation_steps=steps))
    large = _ours(tc.optimizers.SGD(learning_rate=0.1, momentum=0.5))
    small.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    large.fit(x, y, batch_size=8 * steps, epochs=1, shuffle=False, verbose=0)
    assert small.optimizer.param_groups[0]["iterations"] == large.optimizer.param_groups[0]["iterations"] == 3
    for a, b in zip(_weights(small), _weights(large)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # float32 sums in another order


def test_torch_optimizer_with_compile_argument_equals_the_spec_argument():
    x, y = _data()
    spec = _ours(tc.optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=3))
    linear = nn.Linear(FEATURES, UNITS)
    plain = tc.Model(linear, device="cpu")
    plain.module.load_state_dict(spec.module.state_dict())
    plain.compile(torch.optim.SGD(linear.parameters(), lr=0.1), loss="mse", gradient_accumulation_steps=3)
    for model in (spec, plain):
        model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(_weights(spec), _weights(plain)):
        assert torch.equal(a, b)
    assert plain.optimizer.param_groups[0]["accumulated_steps"] == 14 % 3


def test_train_on_batch_counts_on_the_same_counter():
    x, y = _data()
    model = _ours(tc.optimizers.SGD(learning_rate=0.1), gradient_accumulation_steps=3)
    model.fit(x[:32], y[:32], batch_size=16, epochs=1, shuffle=False, verbose=0)  # 2 micro-steps, no update
    before = _weights(model)
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(_ours(tc.optimizers.SGD(learning_rate=0.1)))))
    model.train_on_batch(x[32:48], y[32:48])  # the third: the update
    assert not any(torch.equal(a, b) for a, b in zip(before, _weights(model)))
    assert model.optimizer.param_groups[0]["iterations"] == 1
    after = _weights(model)
    model.train_on_batch(x[48:64], y[48:64])
    assert all(torch.equal(a, b) for a, b in zip(after, _weights(model)))


def test_steps_per_execution_groups_accumulating_steps_unchanged():
    x, y = _data()
    one = _ours(tc.optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=2))
    grouped = _ours(tc.optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=2), steps_per_execution=3)
    for model in (one, grouped):
        model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(_weights(one), _weights(grouped)):
        assert torch.equal(a, b)


def test_jit_compile_with_accumulation_matches_eager():
    x, y = _data()
    eager = _ours(tc.optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=3))
    jit = _ours(tc.optimizers.Adam(learning_rate=0.01, gradient_accumulation_steps=3), jit_compile=True)
    for model in (eager, jit):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
            model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(_weights(eager), _weights(jit)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert jit.optimizer.param_groups[0]["iterations"] == 14 // 3


# ---------------------------------------------------------------- exact resume mid-accumulation
def _resumable_fit(backup, save_freq, interrupt_at=None, policy=None):
    """Dropout, shuffling, a schedule, clipping and EMA: everything a resume must restore."""
    torch.manual_seed(0)
    np.random.seed(0)
    x, y = _data()
    module = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, UNITS))
    model = tc.Model(module, device="cpu")
    schedule = tc.optimizers.schedules.ExponentialDecay(0.02, decay_steps=3, decay_rate=0.8)
    optimizer = tc.optimizers.Adam(learning_rate=schedule, clipnorm=1.0, use_ema=True, gradient_accumulation_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mixed_float16 on the CPU
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"], dtype_policy=policy)
    callbacks = [tc.callbacks.BackupAndRestore(str(backup), save_freq=save_freq, delete_checkpoint=False)]
    callbacks = ([Interrupt(interrupt_at)] if interrupt_at else []) + callbacks
    history = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, callbacks=callbacks, verbose=0)
    return model, history


@pytest.mark.parametrize("policy", [None, "mixed_float16"])
@pytest.mark.parametrize("save_freq, interrupt_at, saved_at", [(1, (1, 3), (1, 3)), ("epoch", (1, 5), (1, 0))])
def test_resume_mid_accumulation_matches_the_uninterrupted_run_bit_for_bit(
    tmp_path, save_freq, interrupt_at, saved_at, policy
):
    # Under mixed_float16 the running sums are scaled: the loss scale (which backs off on the first
    # steps' overflows here) must come back with them.
    reference, reference_history = _resumable_fit(tmp_path / "reference", save_freq, policy=policy)
    with pytest.raises(KeyboardInterrupt):
        _resumable_fit(tmp_path / "backup", save_freq, interrupt_at, policy=policy)
    saved = torch.load(tmp_path / "backup" / "latest.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == saved_at
    done = 7 * saved_at[0] + saved_at[1]
    assert saved["optimizer"]["param_groups"][0]["accumulated_steps"] == done % 3 != 0  # mid-accumulation
    assert accumulation.STATE_KEY in saved["optimizer"]
    resumed, history = _resumable_fit(tmp_path / "backup", save_freq, policy=policy)  # fresh: no .grad to lean on
    if policy is not None:
        scale = reference._compiled.precision.scaler.get_scale()
        assert scale < 2.0**16 and resumed._compiled.precision.scaler.get_scale() == scale
    for key, value in reference.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[key], value), key
    reference_state, resumed_state = reference.optimizer.state_dict(), resumed.optimizer.state_dict()
    assert resumed_state["param_groups"] == reference_state["param_groups"]
    for p, q in zip(reference.module.parameters(), resumed.module.parameters()):
        assert (p.grad is None and q.grad is None) or torch.equal(p.grad, q.grad)
    assert history.history["loss"][-1] == reference_history.history["loss"][-1]


# ---------------------------------------------------------------- no host read per step
def _reads(counts, batches, steps):
    x, y = _data()
    x, y = np.concatenate([x] * 4)[: batches * 8], np.concatenate([y] * 4)[: batches * 8]
    schedule = tc.optimizers.schedules.CosineDecay(0.01, decay_steps=100)
    model = _ours(tc.optimizers.Adam(schedule, clipnorm=1.0, weight_decay=0.01, use_ema=True), metrics=["mae"])
    model.compile(
        tc.optimizers.Adam(schedule, clipnorm=1.0, weight_decay=0.01, use_ema=True),
        loss="mse",
        metrics=["mae"],
        gradient_accumulation_steps=steps,
    )
    counts.clear()
    model.fit(x, y, batch_size=8, epochs=2, verbose=1)
    return sum(counts.values()), dict(counts)


@pytest.mark.parametrize("steps", [2, 3])
def test_fit_with_accumulation_reads_a_constant_number_of_values_per_epoch(count_reads, steps, capsys):  # noqa: F811
    few, seen_few = _reads(count_reads, 12, steps)
    many, seen_many = _reads(count_reads, 48, steps)
    assert many == few, f"reads grow with the number of steps: {seen_few} for 12, {seen_many} for 48"


# ---------------------------------------------------------------- float16 overflow
def _float16_model(**optimizer_kwargs):
    model = _ours("sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float16 on the CPU
        model.compile(
            tc.optimizers.Adam(learning_rate=0.01, **optimizer_kwargs),
            loss="mse",
            dtype_policy="mixed_float16",
            gradient_accumulation_steps=3,
        )
    return model


@pytest.mark.parametrize("optimizer_kwargs", [{}, {"weight_decay": 0.1}, {"use_ema": True, "clipnorm": 1.0}])
@pytest.mark.parametrize("overflowing", [0, 2])
def test_float16_overflow_on_one_micro_batch_skips_the_whole_update(monkeypatch, optimizer_kwargs, overflowing):
    x, y = (torch.from_numpy(a) for a in _data())
    model = _float16_model(**optimizer_kwargs)
    assert model.optimizer._step_supports_amp_scaling  # the fused kernel takes the flag on the device
    model.train_on_batch(x[:16], y[:16])  # builds the loss (its first-batch checks read values)
    model.train_on_batch(x[16:32], y[16:32])
    model.train_on_batch(x[32:48], y[32:48])  # the first update
    scale = model._compiled.precision.scaler.get_scale()
    before = _weights(model)
    reads = []
    for name in ("item", "__float__", "__bool__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, lambda self, name=name: reads.append(name) or 0.0)
    for i in range(3):
        xb = x[48 + 16 * i : 64 + 16 * i] * (1e5 if i == overflowing else 1.0)  # float16 gradients overflow
        model.train_step((xb, y[48 + 16 * i : 64 + 16 * i], None))
    monkeypatch.undo()
    assert reads == []
    assert all(torch.equal(a, b) for a, b in zip(before, _weights(model)))  # nothing of the update applied
    assert model._compiled.precision.scaler.get_scale() == scale / 2  # the scaler backed off, once
    assert model.optimizer.param_groups[0]["accumulated_steps"] == 0
    for i in range(3):  # the next cycle starts from a fresh sum and updates
        model.train_step((x[i * 16 : i * 16 + 16], y[i * 16 : i * 16 + 16], None))
    after = _weights(model)
    assert all(torch.isfinite(w).all() for w in after)
    assert not any(torch.equal(a, b) for a, b in zip(before, after))


# ---------------------------------------------------------------- compile's checks
def test_compile_refuses_accumulation_on_the_optimizer_and_in_compile_at_once():
    with pytest.raises(ValueError, match="set twice"):
        _ours(tc.optimizers.Adam(gradient_accumulation_steps=2), gradient_accumulation_steps=2)


@pytest.mark.parametrize("value", [1, 2.0, True, -3])
def test_compile_refuses_accumulation_steps_below_two_or_not_an_integer(value):
    with pytest.raises(ValueError, match=r"`gradient_accumulation_steps` must be an integer >= 2"):
        _ours("sgd", gradient_accumulation_steps=value)


def test_compile_refuses_accumulation_with_a_closure_optimizer():
    linear = nn.Linear(FEATURES, UNITS)
    model = tc.Model(linear, device="cpu")
    with pytest.raises(ValueError, match="closure"):
        model.compile(torch.optim.LBFGS(linear.parameters()), loss="mse", gradient_accumulation_steps=2)


def test_compile_argument_works_with_an_id_and_recompiling_without_it_stops_accumulating():
    x, y = _data()
    model = _ours("sgd", gradient_accumulation_steps=2)
    model.fit(x[:48], y[:48], batch_size=16, epochs=1, verbose=0)
    assert model.optimizer.param_groups[0]["iterations"] == 1
    optimizer = model.optimizer
    model.compile(optimizer, loss="mse")  # the same torch optimizer, without accumulation
    before = _weights(model)
    model.train_on_batch(x[:16], y[:16])
    assert not any(torch.equal(a, b) for a, b in zip(before, _weights(model)))
    assert accumulation.STATE_KEY not in optimizer.state_dict()


def test_cuda_graphs_refuse_accumulation_with_a_reason():
    from torchcompile.engine.execution import capture_blocker

    model = _ours("sgd", gradient_accumulation_steps=2, cuda_graph=True)
    model.device = torch.device("cuda")  # past the device check, to reach the accumulation's reason
    why = capture_blocker(model, model._compiled, custom_train_step=False)
    assert why is not None and "gradient_accumulation_steps" in why


def test_a_custom_train_step_stepping_the_optimizer_itself_is_warned_once():
    class Custom(tc.Model):
        def train_step(self, data):
            x, y, _ = tc.utils.unpack_x_y_sample_weight(data)
            self.zero_grad()
            loss = self.compute_loss(x, y, self(x, training=True))
            loss.backward()
            self.optimizer.step()
            return {"loss": loss.detach()}

    x, y = _data()
    model = Custom(nn.Linear(FEATURES, UNITS), device="cpu")
    model.compile(tc.optimizers.SGD(0.01, gradient_accumulation_steps=2), loss="mse")
    with pytest.warns(RuntimeWarning, match="custom train_step") as caught:
        model.fit(x[:64], y[:64], batch_size=16, verbose=0)
    assert sum("gradient_accumulation_steps" in str(w.message) for w in caught) == 1
