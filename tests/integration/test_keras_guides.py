# SPDX-License-Identifier: Apache-2.0
"""keras.io guides ported to torch modules, and Keras 3's custom-step contract where a port meets it.

- "Writing your own callbacks" (keras-io guides/writing_your_own_callbacks.py): a callback printing
  ``list(logs.keys())`` in every hook, EarlyStoppingAtMinLoss, CustomLearningRateScheduler;
- the CategoricalTruePositives metric of "Training & evaluation with the built-in methods", written
  Keras' way (``add_variable`` / ``assign_add`` / ``.value``);
- compile called positionally in Keras' argument order, against Keras 3 on frozen-weights twins;
- ``run_eagerly=True``, an LBFGS closure in the default step, a step returning an extra key, fit with
  and without an overridden step when compile got no loss, and a step updating the loss tracker itself.

MNIST is replaced by generated data of MNIST's shapes (offline).
"""

from collections.abc import Mapping

import numpy as np
import pytest
import torch

import torchcompile as tc

keras_oracle = pytest.importorskip("tests.keras_oracle")
keras = keras_oracle.keras

pytestmark = [pytest.mark.keras, pytest.mark.slow]

N = 1000
HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_test_begin", "on_test_end",
    "on_predict_begin", "on_predict_end", "on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin",
    "on_test_batch_end", "on_predict_batch_begin", "on_predict_batch_end",
)  # fmt: skip


@pytest.fixture(scope="module")
def mnist_like():
    """(x_train, y_train), (x_test, y_test): 1000 flattened 28x28 images in [0, 1] and digit labels."""
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((2, N, 784)).astype("float32")
    y_train, y_test = rng.integers(0, 10, size=(2, N))
    return (x_train, y_train), (x_test, y_test)


def get_model():
    """The guide's get_model (keras.Sequential([keras.layers.Dense(1)])) with a torch layer."""
    model = tc.Sequential()
    model.add(torch.nn.Linear(784, 1))
    model.compile(
        optimizer=tc.optimizers.RMSprop(learning_rate=0.1),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


def get_keras_model():
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
        loss="mean_squared_error",
        metrics=["mean_absolute_error"],
    )
    return model


# ------------------------------------------------------------------------------------------------ callbacks guide
def custom_callback(base, record):
    """The guide's CustomCallback, recording ``(hook, [batch or epoch], logs)`` instead of only printing."""

    class CustomCallback(base):
        pass

    def hook(name, indexed):
        def on_any(self, logs=None):
            keys = list(logs.keys())
            print(f"{name}: got log keys: {keys}")
            record.append((name, logs, sorted(keys)))

        def on_indexed(self, index, logs=None):
            keys = list(logs.keys())
            print(f"{name} {index}: got log keys: {keys}")
            record.append((name, index, logs, sorted(keys)))

        return on_indexed if indexed else on_any

    for name in HOOKS:
        setattr(CustomCallback, name, hook(name, name.endswith(("_batch_begin", "_batch_end")) or "epoch" in name))
    return CustomCallback()


def _run_guide_basic_example(model, base, data):
    (x_train, y_train), (x_test, y_test) = data
    record = []
    model.fit(
        x_train, y_train, batch_size=128, epochs=1, verbose=0, validation_split=0.5,
        callbacks=[custom_callback(base, record)],
    )  # fmt: skip
    model.evaluate(x_test, y_test, batch_size=128, verbose=0, callbacks=[custom_callback(base, record)])
    model.predict(x_test, batch_size=128, verbose=0, callbacks=[custom_callback(base, record)])
    return record


def test_every_hook_gets_logs_with_keras_keys(mnist_like, capsys):
    ours = _run_guide_basic_example(get_model(), tc.callbacks.Callback, mnist_like)
    theirs = _run_guide_basic_example(get_keras_model(), keras.callbacks.Callback, mnist_like)
    assert {entry[0] for entry in ours} == set(HOOKS)
    assert all(isinstance(entry[-2], Mapping) for entry in ours)
    # Same hooks, same order, same batch/epoch indices, same log keys as Keras 3.
    assert [(e[:-2], e[-1]) for e in ours] == [(e[:-2], e[-1]) for e in theirs]
    assert "on_train_begin: got log keys: []" in capsys.readouterr().out


def test_every_hook_of_a_keras_callback_gets_a_dict(mnist_like):
    ours = _run_guide_basic_example(get_model(), keras.callbacks.Callback, mnist_like)
    not_dicts = sorted({entry[0] for entry in ours if not isinstance(entry[-2], dict)})
    assert not_dicts == []


def test_tc_callback_batch_logs_are_a_lazy_mapping_with_dict_methods(mnist_like):
    # Deliberate (README): our own callbacks get batch logs computed on first read, so a fit whose
    # callbacks never read them runs no extra kernels; keys(), items(), [] and copy() work as on a dict.
    ours = _run_guide_basic_example(get_model(), tc.callbacks.Callback, mnist_like)
    batch_logs = [entry[-2] for entry in ours if entry[0] == "on_train_batch_end"]
    assert batch_logs and all(isinstance(logs, Mapping) and isinstance(logs.copy(), dict) for logs in batch_logs)


class LossAndErrorPrintingCallback(tc.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"Up to batch {batch}, the average loss is {logs['loss']:7.2f}.")

    def on_test_batch_end(self, batch, logs=None):
        print(f"Up to batch {batch}, the average loss is {logs['loss']:7.2f}.")

    def on_epoch_end(self, epoch, logs=None):
        print(
            f"The average loss for epoch {epoch} is {logs['loss']:7.2f} "
            f"and mean absolute error is {logs['mean_absolute_error']:7.2f}."
        )


def test_loss_and_error_printing_callback_formats_the_logs(mnist_like, capsys):
    (x_train, y_train), (x_test, y_test) = mnist_like
    model = get_model()
    history = model.fit(
        x_train, y_train, batch_size=128, epochs=2, verbose=0, callbacks=[LossAndErrorPrintingCallback()]
    )
    model.evaluate(x_test, y_test, batch_size=128, verbose=0, callbacks=[LossAndErrorPrintingCallback()])
    out = capsys.readouterr().out
    assert out.count("Up to batch") == 2 * 8 + 8
    assert f"The average loss for epoch 1 is {history.history['loss'][1]:7.2f}" in out


class EarlyStoppingAtMinLoss(tc.callbacks.Callback):
    """Stop training when the loss is at its min, i.e. the loss stops decreasing (the guide's code).

    Args:
        patience: Number of epochs to wait after min has been hit. After this
        number of no improvement, training stops.
    """

    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience
        # best_weights to store the weights at which the minimum loss occurs.
        self.best_weights = None

    def on_train_begin(self, logs=None):
        # The number of epoch it has waited when loss is no longer minimum.
        self.wait = 0
        # The epoch the training stops at.
        self.stopped_epoch = 0
        # Initialize the best as infinity.
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        current = logs.get("loss")
        if np.less(current, self.best):
            self.best = current
            self.wait = 0
            # Record the best weights if current results is better (less).
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                print("Restoring model weights from the end of the best epoch.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


def test_early_stopping_at_min_loss_stops_and_restores_the_best_weights(mnist_like, capsys):
    (x_train, y_train), _ = mnist_like
    model = get_model()
    stopper = EarlyStoppingAtMinLoss()
    history = model.fit(
        x_train, y_train, batch_size=64, steps_per_epoch=5, epochs=30, verbose=0,
        callbacks=[LossAndErrorPrintingCallback(), stopper],
    ).history  # fmt: skip
    losses = history["loss"]
    assert 0 < stopper.stopped_epoch < 29 and len(losses) == stopper.stopped_epoch + 1
    assert losses[-1] >= min(losses) == stopper.best
    restored = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(restored, stopper.best_weights))
    assert np.array_equal(model.module[0].weight.detach().numpy(), stopper.best_weights[0])
    assert f"Epoch {stopper.stopped_epoch + 1}: early stopping" in capsys.readouterr().out


LR_SCHEDULE = [
    # (epoch to start, learning rate) tuples
    (3, 0.05),
    (6, 0.01),
    (9, 0.005),
    (12, 0.001),
]


def lr_schedule(epoch, lr):
    """Helper function to retrieve the scheduled learning rate based on epoch."""
    if epoch < LR_SCHEDULE[0][0] or epoch > LR_SCHEDULE[-1][0]:
        return lr
    for i in range(len(LR_SCHEDULE)):
        if epoch == LR_SCHEDULE[i][0]:
            return LR_SCHEDULE[i][1]
    return lr


class CustomLearningRateScheduler(tc.callbacks.Callback):
    """Learning rate scheduler which sets the learning rate according to schedule (the guide's Keras 3 code).

    Args:
        schedule: a function that takes an epoch index
            (integer, indexed from 0) and current learning rate
            as inputs and returns a new learning rate as output (float).
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model.optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        # Get the current learning rate from model's optimizer.
        lr = self.model.optimizer.learning_rate
        # Call schedule function to get the scheduled learning rate.
        scheduled_lr = self.schedule(epoch, lr)
        # Set the value back to the optimizer before this epoch starts
        self.model.optimizer.learning_rate = scheduled_lr
        print(f"\nEpoch {epoch}: Learning rate is {float(np.array(scheduled_lr))}.")


class TorchLearningRateScheduler(CustomLearningRateScheduler):
    """The same callback on torch's spelling: ``optimizer.param_groups[0]["lr"]``."""

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.param_groups[0]["lr"]
        scheduled_lr = self.schedule(epoch, lr)
        self.model.optimizer.param_groups[0]["lr"] = scheduled_lr
        print(f"\nEpoch {epoch}: Learning rate is {float(np.array(scheduled_lr))}.")

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(self.model.optimizer.param_groups[0]["lr"])


EXPECTED_LRS = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.001, 0.001, 0.001]


def _fit_with_schedule(callback, mnist_like):
    (x_train, y_train), _ = mnist_like
    model = get_model()
    model.fit(
        x_train, y_train, batch_size=64, steps_per_epoch=5, epochs=15, verbose=0,
        callbacks=[LossAndErrorPrintingCallback(), callback],
    )  # fmt: skip
    return model


def test_learning_rate_scheduler_through_param_groups(mnist_like, capsys):
    callback = TorchLearningRateScheduler(lr_schedule)
    model = _fit_with_schedule(callback, mnist_like)
    assert callback.seen == pytest.approx(EXPECTED_LRS)
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)
    assert "Epoch 12: Learning rate is 0.001." in capsys.readouterr().out


def test_learning_rate_scheduler_as_the_guide_writes_it(mnist_like):
    model = _fit_with_schedule(CustomLearningRateScheduler(lr_schedule), mnist_like)
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


# ------------------------------------------------------------------------------------------------ custom metric
class CategoricalTruePositives(tc.metrics.Metric):
    """keras.io's CategoricalTruePositives, Keras 3 code with keras.ops changed to torch."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = torch.reshape(torch.argmax(y_pred, axis=1), (-1, 1))
        values = y_true.to(torch.int32) == y_pred.to(torch.int32)
        values = values.to(torch.float32)
        if sample_weight is not None:
            sample_weight = sample_weight.to(torch.float32)
            values = torch.multiply(values, sample_weight)
        self.true_positives.assign_add(torch.sum(values))

    def result(self):
        return self.true_positives.value

    def reset_state(self):
        # The state of the metric will be reset at the start of each epoch.
        self.true_positives.assign(0.0)


class KerasCategoricalTruePositives(keras.metrics.Metric):
    """The guide's code, for the oracle."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
        values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
        values = ops.cast(values, "float32")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            values = ops.multiply(values, sample_weight)
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives.value

    def reset_state(self):
        self.true_positives.assign(0.0)


def _classifier_twins(seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(784, 10)).astype("float32") * 0.05
    bias = rng.normal(size=(10,)).astype("float32") * 0.1
    k_model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    k_model.layers[0].set_weights([kernel, bias])
    linear = torch.nn.Linear(784, 10)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))
    return k_model, tc.Model(torch.nn.Sequential(linear, torch.nn.Softmax(dim=-1)), device="cpu"), kernel, bias


def test_keras_style_metric_is_in_history_and_resets_each_epoch(mnist_like):
    (x_train, y_train), _ = mnist_like
    y = y_train.reshape(-1, 1)
    k_model, model, kernel, bias = _classifier_twins()
    model.compile(
        optimizer=tc.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy",
        metrics=[CategoricalTruePositives()],
    )  # fmt: skip
    history = model.fit(x_train, y, batch_size=64, epochs=3, verbose=0).history
    one_epoch = float(np.sum((x_train @ kernel + bias).argmax(axis=1) == y_train))
    assert history["categorical_true_positives"] == [one_epoch] * 3  # a count over one epoch, not a running one
    assert 0 < one_epoch < N

    k_model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy",
        metrics=[KerasCategoricalTruePositives()],
    )  # fmt: skip
    theirs = k_model.fit(x_train, y, batch_size=64, epochs=3, verbose=0).history
    assert set(theirs) == set(history)
    for key in theirs:
        np.testing.assert_allclose(history[key], theirs[key], rtol=1e-5, err_msg=key)


def test_keras_style_metric_trains_inside_fit_with_validation(mnist_like):
    (x_train, y_train), _ = mnist_like
    labels = (x_train[:, :10].argmax(axis=1)).reshape(-1, 1)  # learnable: the brightest of the first 10 pixels
    model = tc.Model(torch.nn.Sequential(torch.nn.Linear(784, 10), torch.nn.Softmax(dim=-1)), device="cpu")
    metric = CategoricalTruePositives()
    model.compile(
        optimizer=tc.optimizers.RMSprop(learning_rate=1e-2), loss="sparse_categorical_crossentropy",
        metrics=[metric],
    )  # fmt: skip
    history = model.fit(x_train, labels, batch_size=64, epochs=4, verbose=0, validation_split=0.2).history
    assert set(history) == {"loss", "categorical_true_positives", "val_loss", "val_categorical_true_positives"}
    counts = history["categorical_true_positives"]
    assert counts[-1] > counts[0] and all(c <= 800 for c in counts)  # 800 training samples per epoch
    assert all(c <= 200 for c in history["val_categorical_true_positives"])
    assert isinstance(metric, torch.nn.Module) and "_variable_ctp" in dict(metric.named_buffers())


# ------------------------------------------------------------------------------------------------ compile order
class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 1)

    def forward(self, x):
        return {"out_a": torch.softmax(self.a(x), dim=-1), "out_b": self.b(x)}


def _two_head_twins(rng):
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, activation="softmax", name="out_a")(inputs)
    b = keras.layers.Dense(1, name="out_b")(inputs)
    k_model = keras.Model(inputs, {"out_a": a, "out_b": b})
    module = TwoHeads()
    for name, linear in (("out_a", module.a), ("out_b", module.b)):
        kernel = rng.normal(size=(4, linear.out_features)).astype("float32")
        bias = rng.normal(size=(linear.out_features,)).astype("float32")
        k_model.get_layer(name).set_weights([kernel, bias])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(kernel.T))
            linear.bias.copy_(torch.from_numpy(bias))
    return k_model, tc.Model(module, device="cpu")


def test_positional_compile_means_what_it_means_in_keras(rng):
    x = rng.normal(size=(37, 4)).astype("float32")
    y = {"out_a": rng.integers(0, 3, size=37), "out_b": rng.normal(size=(37, 1)).astype("float32")}
    sample_weight = rng.uniform(0.1, 3.0, size=37).astype("float32")
    k_model, t_model = _two_head_twins(rng)
    loss = {"out_a": "sparse_categorical_crossentropy", "out_b": "mse"}
    loss_weights = {"out_a": 2.0, "out_b": 0.5}
    metrics = {"out_a": ["accuracy"], "out_b": ["mae"]}
    weighted_metrics = {"out_a": ["accuracy"], "out_b": ["mse"]}
    # optimizer, loss, loss_weights, metrics, weighted_metrics, run_eagerly, steps_per_execution: Keras' order
    k_model.compile(keras.optimizers.SGD(learning_rate=0.0), loss, loss_weights, metrics, weighted_metrics, True, 1)
    t_model.compile(tc.optimizers.SGD(learning_rate=0.0), loss, loss_weights, metrics, weighted_metrics, True, 1)
    kwargs = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, sample_weight=sample_weight)
    theirs = k_model.fit(x, y, **kwargs).history
    ours = t_model.fit(x, y, **kwargs).history
    assert set(ours) == set(theirs)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-6, err_msg=key)
    assert t_model.get_compile_config()["loss_weights"] == loss_weights
    assert t_model.get_compile_config()["run_eagerly"] is True

    # The comparison tells the orders apart: metrics and weighted_metrics swapped give other numbers.
    _, swapped = _two_head_twins(np.random.default_rng(0))
    swapped.load_state_dict(t_model.state_dict())
    swapped.compile(
        tc.optimizers.SGD(learning_rate=0.0), loss, loss_weights, metrics=weighted_metrics, weighted_metrics=metrics
    )
    other = swapped.fit(x, y, **kwargs).history
    assert not np.allclose(other["out_b_mae"], ours["out_b_mae"])
    with pytest.raises((TypeError, ValueError)):  # loss_weights and metrics swapped: refused, as in Keras
        t_model.compile(tc.optimizers.SGD(learning_rate=0.0), loss, metrics, loss_weights)
        t_model.fit(x, y, **kwargs)


# ------------------------------------------------------------------------------------------------ step contract
def _regression_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def test_run_eagerly_is_accepted_and_trains():
    x, y = _regression_data()
    model = tc.Model(torch.nn.Linear(8, 1), device="cpu")
    model.compile(optimizer="adam", loss="mse", run_eagerly=True, jit_compile=True)
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0).history
    assert model.get_compile_config()["run_eagerly"] is True
    assert model.jit_compile is False  # run_eagerly wins over jit_compile, as Keras
    assert history["loss"][-1] < history["loss"][0]


def test_lbfgs_closure_optimizer_trains_in_the_default_step():
    x, y = _regression_data()
    model = tc.Model(torch.nn.Linear(8, 1), device="cpu")
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)
    model.compile(optimizer, "mse")
    assert model.optimizer is optimizer
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert (
        optimizer.state[optimizer.param_groups[0]["params"][0]]["func_evals"] > 3
    )  # the closure ran more than once per step


class ExtraKeyModel(tc.Model):
    """A step returning an extra key next to the loss."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        self.optimizer.step()
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        self.last_extra = float(y_pred.detach().abs().max())
        return {"loss": self.metrics[0].result(), "extra": y_pred.detach().abs().max()}


def test_extra_key_from_train_step_shows_in_history_and_progress_bar(capsys):
    x, y = _regression_data()
    model = ExtraKeyModel(torch.nn.Linear(8, 1), device="cpu")
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=1).history
    assert set(history) == {"loss", "extra"}
    assert history["extra"][-1] == pytest.approx(model.last_extra)  # the last step's value (Keras' epoch logs)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "extra: " in output and "loss: " in output


class ManualLowLevelModel(tc.Model):
    """The guide's "going lower-level" step: no compiled loss, own trackers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = tc.metrics.Mean(name="loss")
        self.loss_fn = torch.nn.MSELoss()

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        loss = self.loss_fn(self(x, training=True), y)
        loss.backward()
        self.optimizer.step()
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self):
        return [self.loss_tracker]


def test_fit_trains_an_overridden_train_step_without_a_compiled_loss():
    x, y = _regression_data()
    model = ManualLowLevelModel(torch.nn.Linear(8, 1), device="cpu")
    model.compile(optimizer="adam")
    history = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history
    assert list(history) == ["loss"] and history["loss"][-1] < history["loss"][0]


def test_fit_without_loss_and_without_override_raises_before_any_weight_changes():
    x, y = _regression_data()
    model = tc.Model(torch.nn.Linear(8, 1), device="cpu")
    model.compile(optimizer="adam")
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="loss"):
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert not model.optimizer.state  # no step was taken


class GuideSimpleModel(tc.Model):
    """The guide's first train_step, verbatim but for the optimizer call."""

    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        self.optimizer.step()
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


class KerasGuideSimpleModel(keras.Model):
    def train_step(self, data):
        x, y = data
        self.zero_grad()
        y_pred = self(x, training=True)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        loss.backward()
        trainable_weights = [v for v in self.trainable_weights]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_custom_step_updating_the_loss_tracker_counts_each_batch_once():
    x, y = _regression_data(n=100)  # batches of 32, 32, 32, 4
    rng = np.random.default_rng(1)
    kernel, bias = rng.normal(size=(8, 1)).astype("float32"), rng.normal(size=(1,)).astype("float32")
    linear = torch.nn.Linear(8, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T))
        linear.bias.copy_(torch.from_numpy(bias))
    model = GuideSimpleModel(linear, device="cpu")
    model.compile(tc.optimizers.SGD(learning_rate=0.0), "mse")
    history = model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
    pred = x @ kernel + bias
    batch_losses = [np.mean((pred[i : i + 32] - y[i : i + 32]) ** 2) for i in range(0, 100, 32)]
    expected = float(np.mean(batch_losses))  # Mean.update_state(loss): one unweighted value per batch (Keras)
    assert history["loss"] == pytest.approx([expected, expected], rel=1e-5)
    assert float(model.metrics[0].count) == 4  # four updates: the step's own, none from the engine

    inputs = keras.Input((8,))
    k_model = KerasGuideSimpleModel(inputs, keras.layers.Dense(1)(inputs))
    k_model.layers[-1].set_weights([kernel, bias])
    k_model.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")
    theirs = k_model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(history["loss"], theirs["loss"], rtol=1e-5)


class AttributeTrackerModel(tc.Model):
    """A tracker held as an attribute, with no ``metrics`` override (Keras tracks it all the same)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches_seen = tc.metrics.Mean(name="batches_seen")

    def train_step(self, data):
        logs = super().train_step(data)
        self.batches_seen.update_state(1.0)
        return {**logs, "batches": self.batches_seen.count.clone()}


class KerasAttributeTrackerModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches_seen = keras.metrics.Mean(name="batches_seen")

    def train_step(self, data):
        logs = super().train_step(data)
        self.batches_seen.update_state(1.0)
        return {**logs, "batches": self.batches_seen.count + 0.0}


def _attribute_tracker_histories():
    x, y = _regression_data(n=40)
    inputs = keras.Input((8,))
    k_model = KerasAttributeTrackerModel(inputs, keras.layers.Dense(1)(inputs))
    k_model.compile("sgd", "mse")
    model = AttributeTrackerModel(torch.nn.Linear(8, 1), device="cpu")
    model.compile("sgd", "mse")
    kwargs = dict(batch_size=10, epochs=3, verbose=0)
    return model, k_model, model.fit(x, y, **kwargs).history, k_model.fit(x, y, **kwargs).history


def test_keras_tracks_a_metric_attribute_without_a_metrics_override():
    """The oracle's behaviour, pinned: Keras lists the attribute in ``metrics`` and resets it each epoch."""
    _, k_model, _, theirs = _attribute_tracker_histories()
    assert "batches_seen" in [m.name for m in k_model.metrics]
    assert theirs["batches"] == [4.0, 4.0, 4.0]


def test_metric_attribute_is_tracked_and_reset_each_epoch_as_keras():
    model, _, ours, _ = _attribute_tracker_histories()
    assert "batches_seen" in [m.name for m in model.metrics]
    assert ours["batches"] == [4.0, 4.0, 4.0]


class RecordingStep(tc.Model):
    def train_step(self, data):
        self.seen.append(data)
        return {}


class KerasRecordingStep(keras.Model):
    def train_step(self, data):
        self.seen.append(data)
        return {}


def test_a_one_tensor_dataloader_batch_reaches_the_step_as_keras_passes_it():
    x = torch.rand(10, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=5)
    inputs = keras.Input((4,))
    k_model = KerasRecordingStep(inputs, keras.layers.Dense(1)(inputs))
    k_model.seen = []
    k_model.compile("sgd")
    k_model.fit(loader, verbose=0)
    model = RecordingStep(torch.nn.Linear(4, 1), device="cpu")
    model.seen = []
    model.compile("sgd")
    model.fit(loader, verbose=0)
    assert [len(batch) for batch in k_model.seen] == [1, 1]  # Keras: [x] as the loader yields it
    assert all(isinstance(batch, (list, tuple)) and len(batch) == 1 for batch in model.seen)
    assert all(tuple(batch[0].shape) == (5, 4) for batch in model.seen)


def _guide_simple_histories(metrics):
    x, y = _regression_data(n=64)
    inputs = keras.Input((8,))
    k_model = KerasGuideSimpleModel(inputs, keras.layers.Dense(1)(inputs))
    k_model.compile("adam", "mse", metrics=metrics)
    model = GuideSimpleModel(torch.nn.Linear(8, 1), device="cpu")
    model.compile("adam", "mse", metrics=metrics)
    kwargs = dict(batch_size=16, epochs=2, verbose=0)
    return model.fit(x, y, **kwargs).history, k_model.fit(x, y, **kwargs).history


def test_keras_shows_compiled_metrics_updated_in_a_custom_step():
    """The oracle's behaviour, pinned: the guide's first step shows the compiled 'mae' in Keras 3."""
    _, theirs = _guide_simple_histories(["mae"])
    assert set(theirs) == {"loss", "mae"}


def test_compiled_metrics_updated_in_a_custom_step_show_in_history_as_keras():
    ours, _ = _guide_simple_histories(["mae"])
    assert set(ours) == {"loss", "mae"}
