# SPDX-License-Identifier: Apache-2.0
"""Issue 14's threads and clear errors: each test names the behaviour it checks.

Thread races run in a child process with a timeout, so a crash fails the test, not the suite.
"""

import collections
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import torchcompile as tc


def _data(n=64, features=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def _run_child(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# ---------------------------------------------------------------- threads (item 6)
_THREADS_PRELUDE = """
    import threading
    import numpy as np, torch
    from torch import nn
    import torchcompile as tc
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(120, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    model = tc.Model(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
"""


def test_predict_from_several_threads_gives_the_serial_results_and_leaves_the_model_alone():
    out = _run_child(
        _THREADS_PRELUDE
        + """
    model.train()
    expected = model.predict(x, batch_size=8, verbose=0)
    stats = [b.clone() for b in model.module[1].buffers()]
    results = [None] * 3
    def work(i):
        results[i] = model.predict(x, batch_size=8, verbose=0)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    [t.start() for t in threads]; [t.join() for t in threads]
    assert all(np.array_equal(r, expected) for r in results), "outputs differ from the serial predict"
    assert all(torch.equal(a, b) for a, b in zip(stats, model.module[1].buffers())), "BatchNorm statistics changed"
    assert model.module.training, "left in eval mode"
    print("ok")
    """
    )
    assert out.strip().endswith("ok")


def test_a_call_from_another_thread_during_fit_is_refused_and_training_stays_in_train_mode():
    out = _run_child(
        _THREADS_PRELUDE
        + """
    modes, errors, started = [], [], threading.Event()
    class Watch(tc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            modes.append(self.model.module.training)
            started.set()
    def monitor():
        started.wait(10)
        for _ in range(20):
            try:
                model.predict(x[:8], verbose=0)
            except RuntimeError as error:
                errors.append(str(error))
    thread = threading.Thread(target=monitor)
    thread.start()
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Watch()])
    thread.join()
    assert all(modes), "a training step ran in eval mode"
    assert errors and "while fit() runs" in errors[0], errors[:1]
    print("ok")
    """
    )
    assert out.strip().endswith("ok")


def test_two_concurrent_fits_on_one_model_refuse_the_second_without_crashing():
    out = _run_child(
        _THREADS_PRELUDE
        + """
    errors, started = [], threading.Event()
    class Started(tc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            started.set()
    def second():
        started.wait(10)
        try:
            model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        except RuntimeError as error:
            errors.append(str(error))
    thread = threading.Thread(target=second)
    thread.start()
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[Started()])
    thread.join()
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()
    assert errors and "fit() was called from another thread" in errors[0], errors
    print("ok")
    """
    )
    assert out.strip().endswith("ok")


def test_a_callback_may_evaluate_during_fit_in_the_same_thread():
    x, y = _data()
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    evaluate = tc.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(model.evaluate(x, y, verbose=0)))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[evaluate])
    assert len(seen) == 2


# ---------------------------------------------------------------- clear errors (item 14)
def test_nan_predictions_on_the_first_batch_are_reported_as_nan_not_logits():
    x, y = _data()
    x[3, 1] = np.nan
    model = tc.Model(nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=-1)), device="cpu")
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="contains NaN.*inputs"):
        model.fit(x, y, verbose=0)


def test_a_module_without_parameters_compiles_and_fit_warns_and_trains_nothing():
    x, y = _data()
    model = tc.Model(nn.Softmax(dim=-1), device="cpu")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        history = model.fit(x[:, :2], y, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_an_all_frozen_module_warns_and_keeps_its_weights():
    x, y = _data()
    module = nn.Linear(4, 2).requires_grad_(False)
    before = module.weight.clone()
    model = tc.Model(module, device="cpu")
    model.compile("adam", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        model.fit(x, y, verbose=0)
    assert torch.equal(module.weight, before)


def test_fit_after_compile_with_optimizer_none_names_the_optimizer():
    x, y = _data()
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile(optimizer=None, loss=tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="needs an optimizer.*optimizer=None"):
        model.fit(x, y, verbose=0)


class _NamedOutputs(nn.Module):
    Out = collections.namedtuple("Out", "logits hidden")

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        return self.Out(self.linear(x), x * 2)


def test_predict_returns_a_namedtuple_of_arrays_for_namedtuple_outputs():
    x, _ = _data(10)
    out = tc.Model(_NamedOutputs(), device="cpu").predict(x, batch_size=4, verbose=0)
    assert isinstance(out, _NamedOutputs.Out) and out.logits.shape == (10, 2) and out.hidden.shape == (10, 4)


def test_an_empty_batch_from_a_generator_is_a_clear_error_before_any_step():
    x, y = _data()

    def batches():
        yield torch.from_numpy(x[:0]), torch.from_numpy(y[:0])

    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="empty batch"):
        model.fit(batches(), verbose=0)


@pytest.mark.parametrize("loss", [tc.losses.MeanSquaredError(reduction="none"), nn.MSELoss(reduction="none")])
def test_compile_refuses_a_loss_that_does_not_reduce(loss):
    with pytest.raises(ValueError, match="reduction='none'.*one number"):
        tc.Model(nn.Linear(4, 2), device="cpu").compile("sgd", loss)


@pytest.mark.parametrize("epochs", [2.5, "3"])
def test_fit_names_a_non_integer_epochs(epochs):
    x, y = _data()
    model = tc.Model(nn.Linear(4, 2), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(TypeError, match="`epochs` must be an integer"):
        model.fit(x, y, epochs=epochs, verbose=0)


# ---------------------------------------------------------------- validation arrays (item 5)
def _classifier():
    torch.manual_seed(0)
    model = tc.Model(nn.Linear(4, 3), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_bad_validation_labels_are_found_before_the_first_step():
    x, y = _data()
    model = _classifier()
    before = model.module.weight.clone()
    with pytest.raises(ValueError, match="label"):
        model.fit(x, y, validation_data=(x[:8], np.full(8, 7)), verbose=0)
    assert torch.equal(model.module.weight, before)


def test_validation_arrays_of_another_width_are_refused_before_the_first_step():
    x, y = _data()
    model = _classifier()
    before = model.module.weight.clone()
    with pytest.raises(ValueError, match="validation_data.*shape"):
        model.fit(x, y, validation_data=(x[:8, :3], y[:8]), verbose=0)
    assert torch.equal(model.module.weight, before)


def test_a_forward_returning_none_is_named():
    class ReturnsNothing(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, x):
            self.linear(x)

    x, y = _data()
    model = tc.Model(ReturnsNothing(), device="cpu")
    model.compile("sgd", tc.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="forward returned None"):
        model.fit(x, y, verbose=0)


def test_a_positional_field_in_a_checkpoint_template_is_a_clear_error(tmp_path):
    x, y = _data()
    model = _classifier()
    with pytest.raises(ValueError, match="positional field.*epoch:02d"):
        model.fit(x, y, verbose=0, callbacks=[tc.callbacks.ModelCheckpoint(str(tmp_path / "m{}.pt"))])
