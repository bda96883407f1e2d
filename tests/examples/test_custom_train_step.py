# SPDX-License-Identifier: Apache-2.0
"""examples/custom_train_step.py (keras.io's custom train_step guide, ported) in reduced mode: each part
trains, what the steps return is what History holds, and evaluate returns the custom test_step's logs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

EPOCHS, GAN_EPOCHS, NUM_IMAGES, GAN_BATCH = 3, 2, 128, 64


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("custom_train_step")


@pytest.fixture(scope="module")
def results(example):
    torch.manual_seed(0)
    return example.main(epochs=EPOCHS, gan_epochs=GAN_EPOCHS, num_images=NUM_IMAGES, verbose=0)


def _decreasing(values):
    return all(b < a for a, b in zip(values, values[1:]))


def test_main_prints_the_final_metrics(example, capsys):
    torch.manual_seed(0)
    example.main(epochs=1, gan_epochs=1, num_images=64, verbose=0)
    out = capsys.readouterr().out
    assert "final loss (simple):" in out and "final d_loss / g_loss (GAN):" in out


def test_simple_train_step_learns(results):
    history = results["simple"]
    assert len(history["loss"]) == EPOCHS
    assert _decreasing(history["loss"])


def test_simple_train_step_history_has_the_compiled_metric_as_keras(results):
    # Keras 3 (same guide, same code): History keys {'loss', 'mae'}.
    assert set(results["simple"]) == {"loss", "mae"}


def test_lower_level_history_is_what_the_step_returns_and_learns(results, example):
    history = results["lower_level"]
    assert set(history) == {"loss", "mae"}
    assert len(history["loss"]) == EPOCHS + 2
    assert _decreasing(history["loss"]) and history["mae"][-1] < history["mae"][0]


def test_lower_level_trackers_reset_each_epoch(example):
    model = example.LowLevelCustomModel(torch.nn.Linear(32, 1))
    model.compile(optimizer="adam")
    x, y = example.make_data(100)
    model.fit(x, y, batch_size=10, epochs=3, verbose=0)
    assert float(model.loss_tracker.count) == 10  # one epoch's batches, not three epochs'
    assert float(model.mae_metric.count) == 100


def test_sample_weight_train_step_learns(results):
    history = results["sample_weight"]
    assert "loss" in history and _decreasing(history["loss"])


def test_sample_weight_reaches_the_custom_step(example):
    seen = []

    class Recording(example.WeightedCustomModel):
        def train_step(self, data):
            seen.append(len(data))
            return super().train_step(data)

    model = Recording(torch.nn.Linear(32, 1))
    model.compile(optimizer="adam", loss="mse")
    x, y = example.make_data(64)
    model.fit(x, y, sample_weight=np.ones(64, "float32"), batch_size=32, verbose=0)
    model.fit(x, y, batch_size=32, verbose=0)
    assert seen == [3, 3, 2, 2]  # (x, y, sample_weight) with weights, (x, y) without (Keras)


def test_sample_weight_changes_the_loss(example):
    x, y = example.make_data(64)
    losses = []
    for weights in (np.ones((64, 1), "float32"), np.full((64, 1), 3.0, "float32")):
        torch.manual_seed(0)
        model = example.WeightedCustomModel(torch.nn.Linear(32, 1))
        model.compile(optimizer=example.tc.optimizers.SGD(learning_rate=0.0), loss="mse")
        losses.append(model.fit(x, y, sample_weight=weights, batch_size=64, verbose=0).history["loss"][0])
    np.testing.assert_allclose(losses[1], 3 * losses[0], rtol=1e-5)  # sum_over_batch_size of weighted values


def test_evaluate_returns_the_custom_test_step_logs(results):
    logs = results["evaluate"]
    assert "loss" in logs and np.isfinite(logs["loss"])


def test_custom_test_step_loss_is_the_mean_of_batch_losses(example):
    torch.manual_seed(0)
    model = example.EvalCustomModel(torch.nn.Linear(32, 1))
    model.compile(loss="mse")
    x, y = example.make_data(100, seed=2)
    logs = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    with torch.no_grad():
        pred = model.module(torch.from_numpy(x)).numpy()
    batch_losses = [np.mean((pred[i : i + 32] - y[i : i + 32]) ** 2) for i in range(0, 100, 32)]
    # The guide's test_step calls loss_tracker.update_state(loss): one unweighted value per batch.
    assert logs == pytest.approx({"loss": float(np.mean(batch_losses))}, rel=1e-5)


def test_evaluate_with_custom_test_step_returns_the_compiled_metric_as_keras(results):
    assert set(results["evaluate"]) == {"loss", "mae"}


def test_gan_history_holds_the_gan_trackers(results):
    history = results["gan"]
    assert set(history) == {"d_loss", "g_loss"}
    assert len(history["d_loss"]) == GAN_EPOCHS
    assert all(np.isfinite(v) for values in history.values() for v in values)


def test_gan_trains_both_networks_with_their_own_optimizers_and_resets_trackers(example):
    torch.manual_seed(0)
    discriminator, generator = example.make_discriminator(), example.make_generator(8, channels=4)
    d_before = [p.detach().clone() for p in discriminator.parameters()]
    g_before = [p.detach().clone() for p in generator.parameters()]
    gan = example.GAN(discriminator=discriminator, generator=generator, latent_dim=8)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=0.0003)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=0.0003)
    gan.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, loss_fn=example.tc.losses.BinaryCrossentropy(True))
    images = torch.from_numpy(example.make_images(48))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, images), batch_size=16)
    history = gan.fit(loader, epochs=2, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    assert gan.discriminator is discriminator and gan.generator is generator
    assert all(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters()))
    assert d_optimizer.state and g_optimizer.state  # both Adam optimizers stepped
    assert float(gan.d_loss_tracker.count) == 3 and float(gan.g_loss_tracker.count) == 3  # reset each epoch


def test_gan_discriminator_learns_to_tell_real_from_fake(example):
    """Trained alone (no generator steps), the guide's discriminator loss drops on the stand-in digits."""
    torch.manual_seed(0)
    gan = example.GAN(example.make_discriminator(), example.make_generator(8, channels=4), latent_dim=8)
    gan.compile(
        d_optimizer=torch.optim.Adam(gan.discriminator.parameters(), lr=0.003),
        g_optimizer=torch.optim.SGD(gan.generator.parameters(), lr=0.0),
        loss_fn=example.tc.losses.BinaryCrossentropy(from_logits=True),
    )
    images = torch.from_numpy(example.make_images(64))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, images), batch_size=32)
    history = gan.fit(loader, epochs=4, verbose=0).history
    assert history["d_loss"][-1] < history["d_loss"][0]


def test_make_images_has_torch_image_layout(example):
    images = example.make_images(10)
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
