# SPDX-License-Identifier: Apache-2.0
"""keras.io "Customizing what happens in fit() with PyTorch" (fchollet), ported.

Only the layers change (torch modules instead of Keras layers) and the data is generated here,
offline. Every step below is the guide's, line for line; where the guide updates the weights with
Keras' ``self.optimizer.apply(gradients, trainable_weights)``, the port calls the torch optimizer's
``self.optimizer.step()``, and Keras' ``keras.random.normal`` is ``torch.randn``.

1. a simple ``train_step`` (compile with a loss and metrics, update ``self.metrics`` by hand);
2. going lower-level: compile with an optimizer only, own loss function and ``Mean`` /
   ``MeanAbsoluteError`` trackers listed in an overridden ``metrics`` property;
3. supporting ``sample_weight``;
4. a custom ``test_step``, run by ``evaluate``;
5. a GAN: two torch optimizers, an overridden ``compile(d_optimizer, g_optimizer, loss_fn)``,
   its own ``Mean`` trackers, trained by ``fit`` on a ``DataLoader`` of 28x28 images (N, 1, 28, 28).

    python examples/custom_train_step.py      # about 20 s on a 2-core CPU
"""

import numpy as np
import torch
from torch import nn

import torchcompile as tc


def make_data(n=1000, features=32, seed=0):
    """The guide's ``x = np.random.random((1000, 32))``, with a ``y`` that x explains (plus noise)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features)).astype("float32")
    w = rng.normal(size=(features, 1)).astype("float32") / np.sqrt(features)
    y = (x @ w + 0.05 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def make_images(n=512, seed=0):
    """Stand-in digits for the GAN: one bright Gaussian blob per 28x28 image, (n, 1, 28, 28) in [0, 1]."""
    rng = np.random.default_rng(seed)
    grid = np.arange(28, dtype="float32")
    rows, cols = rng.uniform(8, 20, size=(2, n, 1, 1)).astype("float32")
    radius = rng.uniform(2.5, 4.5, size=(n, 1, 1)).astype("float32")
    blobs = np.exp(-((grid[None, :, None] - rows) ** 2 + (grid[None, None, :] - cols) ** 2) / (2 * radius**2))
    return blobs[:, None].astype("float32")


# ---------------------------------------------------------------------------------------------------------------
# A first simple example
# ---------------------------------------------------------------------------------------------------------------
class CustomModel(tc.Model):
    def train_step(self, data):
        # Unpack the data. Its structure depends on your model and
        # on what you pass to `fit()`.
        x, y = data

        # Call torch.nn.Module.zero_grad() to clear the leftover gradients
        # for the weights from the previous train step.
        self.zero_grad()

        # Compute loss
        y_pred = self(x, training=True)  # Forward pass
        loss = self.compute_loss(y=y, y_pred=y_pred)

        # Call torch.Tensor.backward() on the loss to compute gradients
        # for the weights.
        loss.backward()

        # Update weights (Keras: self.optimizer.apply(gradients, trainable_weights))
        self.optimizer.step()

        # Update metrics (includes the metric that tracks the loss)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)

        # Return a dict mapping metric names to current value
        # Note that it will include the loss (tracked in self.metrics).
        return {m.name: m.result() for m in self.metrics}


def simple_example(epochs=3, verbose="auto"):
    # Construct and compile an instance of CustomModel
    # Keras: inputs = keras.Input(shape=(32,)); outputs = keras.layers.Dense(1)(inputs)
    model = CustomModel(nn.Linear(32, 1))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])

    # Just use `fit` as usual
    x, y = make_data()
    return model.fit(x, y, epochs=epochs, verbose=verbose)


# ---------------------------------------------------------------------------------------------------------------
# Going lower-level
# ---------------------------------------------------------------------------------------------------------------
class LowLevelCustomModel(tc.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = tc.metrics.Mean(name="loss")
        self.mae_metric = tc.metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = tc.losses.MeanSquaredError()

    def train_step(self, data):
        x, y = data

        # Call torch.nn.Module.zero_grad() to clear the leftover gradients
        # for the weights from the previous train step.
        self.zero_grad()

        # Compute loss
        y_pred = self(x, training=True)  # Forward pass
        loss = self.loss_fn(y, y_pred)

        # Call torch.Tensor.backward() on the loss to compute gradients
        # for the weights.
        loss.backward()

        # Update weights
        self.optimizer.step()

        # Compute our own metrics
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {
            "loss": self.loss_tracker.result(),
            "mae": self.mae_metric.result(),
        }

    @property
    def metrics(self):
        # We list our `Metric` objects here so that `reset_state()` can be
        # called automatically at the start of each epoch
        # or at the start of `evaluate()`.
        return [self.loss_tracker, self.mae_metric]


def lower_level_example(epochs=5, verbose="auto"):
    # Construct an instance of CustomModel
    model = LowLevelCustomModel(nn.Linear(32, 1))

    # We don't pass a loss or metrics here.
    model.compile(optimizer="adam")

    # Just use `fit` as usual -- you can use callbacks, etc.
    x, y = make_data()
    return model.fit(x, y, epochs=epochs, verbose=verbose)


# ---------------------------------------------------------------------------------------------------------------
# Supporting sample_weight & class_weight
# ---------------------------------------------------------------------------------------------------------------
class WeightedCustomModel(tc.Model):
    def train_step(self, data):
        # Unpack the data. Its structure depends on your model and
        # on what you pass to `fit()`.
        if len(data) == 3:
            x, y, sample_weight = data
        else:
            sample_weight = None
            x, y = data

        # Call torch.nn.Module.zero_grad() to clear the leftover gradients
        # for the weights from the previous train step.
        self.zero_grad()

        # Compute loss
        y_pred = self(x, training=True)  # Forward pass
        loss = self.compute_loss(
            y=y,
            y_pred=y_pred,
            sample_weight=sample_weight,
        )

        # Call torch.Tensor.backward() on the loss to compute gradients
        # for the weights.
        loss.backward()

        # Update weights
        self.optimizer.step()

        # Update metrics (includes the metric that tracks the loss)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)

        # Return a dict mapping metric names to current value
        # Note that it will include the loss (tracked in self.metrics).
        return {m.name: m.result() for m in self.metrics}


def sample_weight_example(epochs=3, verbose="auto"):
    # Construct and compile an instance of CustomModel
    model = WeightedCustomModel(nn.Linear(32, 1))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])

    # You can now use sample_weight argument
    x, y = make_data()
    sw = np.random.default_rng(1).random((1000, 1)).astype("float32")
    return model.fit(x, y, sample_weight=sw, epochs=epochs, verbose=verbose)


# ---------------------------------------------------------------------------------------------------------------
# Providing your own evaluation step
# ---------------------------------------------------------------------------------------------------------------
class EvalCustomModel(tc.Model):
    def test_step(self, data):
        # Unpack the data
        x, y = data
        # Compute predictions
        y_pred = self(x, training=False)
        # Updates the metrics tracking the loss
        loss = self.compute_loss(y=y, y_pred=y_pred)
        # Update the metrics.
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        # Return a dict mapping metric names to current value.
        # Note that it will include the loss (tracked in self.metrics).
        return {m.name: m.result() for m in self.metrics}


def test_step_example(verbose="auto"):
    # Construct an instance of CustomModel
    model = EvalCustomModel(nn.Linear(32, 1))
    model.compile(loss="mse", metrics=["mae"])

    # Evaluate with our custom test_step
    x, y = make_data(seed=2)
    return model.evaluate(x, y, verbose=verbose, return_dict=True)


# ---------------------------------------------------------------------------------------------------------------
# Wrapping up: an end-to-end GAN example
# ---------------------------------------------------------------------------------------------------------------
def make_discriminator():
    # Keras: keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Conv2D(64, (3, 3), strides=(2, 2),
    # padding="same"), layers.LeakyReLU(negative_slope=0.2), layers.Conv2D(128, ...), layers.LeakyReLU(...),
    # layers.GlobalMaxPooling2D(), layers.Dense(1)]). Narrower here (16, 32 channels) so it trains in seconds.
    return nn.Sequential(
        nn.Conv2d(1, 16, (3, 3), stride=(2, 2), padding=1),
        nn.LeakyReLU(negative_slope=0.2),
        nn.Conv2d(16, 32, (3, 3), stride=(2, 2), padding=1),
        nn.LeakyReLU(negative_slope=0.2),
        nn.AdaptiveMaxPool2d(1),  # GlobalMaxPooling2D
        nn.Flatten(),
        nn.Linear(32, 1),
    )


def make_generator(latent_dim, channels=16):
    # Keras: Dense(7 * 7 * 128), LeakyReLU, Reshape((7, 7, 128)), Conv2DTranspose(128, (4, 4), strides=(2, 2),
    # padding="same"), LeakyReLU, Conv2DTranspose(...), LeakyReLU, Conv2D(1, (7, 7), padding="same",
    # activation="sigmoid"). Channels-first, and `channels` instead of 128.
    return nn.Sequential(
        # We want to generate `channels` coefficients to reshape into a 7x7 map per channel
        nn.Linear(latent_dim, 7 * 7 * channels),
        nn.LeakyReLU(negative_slope=0.2),
        nn.Unflatten(1, (channels, 7, 7)),
        nn.ConvTranspose2d(channels, channels, (4, 4), stride=(2, 2), padding=1),
        nn.LeakyReLU(negative_slope=0.2),
        nn.ConvTranspose2d(channels, channels, (4, 4), stride=(2, 2), padding=1),
        nn.LeakyReLU(negative_slope=0.2),
        nn.Conv2d(channels, 1, (7, 7), padding=3),
        nn.Sigmoid(),
    )


class GAN(tc.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = tc.metrics.Mean(name="d_loss")
        self.g_loss_tracker = tc.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def train_step(self, real_images):
        device = self.device
        if isinstance(real_images, tuple):
            real_images = real_images[0]
        # Sample random points in the latent space
        batch_size = real_images.shape[0]
        random_latent_vectors = torch.randn((batch_size, self.latent_dim), device=device)

        # Decode them to fake images
        generated_images = self.generator(random_latent_vectors)

        # Combine them with real images
        combined_images = torch.concat([generated_images, real_images], axis=0)

        # Assemble labels discriminating real from fake images
        labels = torch.concat(
            [
                torch.ones((batch_size, 1), device=device),
                torch.zeros((batch_size, 1), device=device),
            ],
            axis=0,
        )
        # Add random noise to the labels - important trick!
        labels += 0.05 * torch.rand(labels.shape, device=device)

        # Train the discriminator
        self.zero_grad()
        predictions = self.discriminator(combined_images)
        d_loss = self.loss_fn(labels, predictions)
        d_loss.backward()
        self.d_optimizer.step()

        # Sample random points in the latent space
        random_latent_vectors = torch.randn((batch_size, self.latent_dim), device=device)

        # Assemble labels that say "all real images"
        misleading_labels = torch.zeros((batch_size, 1), device=device)

        # Train the generator (note that we should *not* update the weights
        # of the discriminator)!
        self.zero_grad()
        predictions = self.discriminator(self.generator(random_latent_vectors))
        g_loss = self.loss_fn(misleading_labels, predictions)
        g_loss.backward()
        self.g_optimizer.step()

        # Update metrics and return their value.
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {
            "d_loss": self.d_loss_tracker.result(),
            "g_loss": self.g_loss_tracker.result(),
        }


def gan_example(epochs=1, num_images=512, batch_size=64, latent_dim=32, verbose="auto"):
    discriminator = make_discriminator()
    generator = make_generator(latent_dim)

    # Prepare the dataset (Keras: MNIST's digits, float32 in [0, 1]; here generated blobs).
    all_digits = make_images(num_images)

    # Create a TensorDataset
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(all_digits), torch.from_numpy(all_digits))
    # Create a DataLoader
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)

    gan = GAN(discriminator=discriminator, generator=generator, latent_dim=latent_dim)
    gan.compile(
        d_optimizer=torch.optim.Adam(discriminator.parameters(), lr=0.0003),
        g_optimizer=torch.optim.Adam(generator.parameters(), lr=0.0003),
        loss_fn=tc.losses.BinaryCrossentropy(from_logits=True),
    )

    history = gan.fit(dataloader, epochs=epochs, verbose=verbose)
    return gan, history


def main(epochs=3, gan_epochs=2, num_images=512, verbose="auto"):
    """Run the guide's five parts; returns their results. The tests pass smaller numbers."""
    torch.manual_seed(0)
    results = {}

    print("== A first simple example")
    results["simple"] = simple_example(epochs=epochs, verbose=verbose).history
    print("== Going lower-level")
    results["lower_level"] = lower_level_example(epochs=epochs + 2, verbose=verbose).history
    print("== Supporting sample_weight")
    results["sample_weight"] = sample_weight_example(epochs=epochs, verbose=verbose).history
    print("== Providing your own evaluation step")
    results["evaluate"] = test_step_example(verbose=verbose)
    print("== An end-to-end GAN")
    gan, history = gan_example(epochs=gan_epochs, num_images=num_images, verbose=verbose)
    results["gan"] = history.history
    results["gan_model"] = gan

    print(f"final loss (simple): {results['simple']['loss'][-1]:.4f}")
    print(f"final mae (lower-level): {results['lower_level']['mae'][-1]:.4f}")
    print(f"evaluate (custom test_step): {results['evaluate']}")
    print(f"final d_loss / g_loss (GAN): {results['gan']['d_loss'][-1]:.4f} / {results['gan']['g_loss'][-1]:.4f}")
    return results


if __name__ == "__main__":
    main()
