# SPDX-License-Identifier: Apache-2.0
"""The Keras "Basic text classification" tutorial (IMDB sentiment, tensorflow.org), ported:
Embedding + GlobalAveragePooling1D + Dense, as a torch module, trained from DataLoaders.

Offline stand-in data: the IMDB reviews are not downloaded. `load_data` writes reviews that
are already vectorized, as the tutorial's TextVectorization layer would leave them: int token
ids below `max_features`, padded with 0 to `sequence_length`. Most tokens are neutral words
drawn Zipf-like; a few are sentiment words, four in five agreeing with the label, so the task
is learnable but not trivial. The training code follows the tutorial line for line.

    python examples/text_classification.py      # about 20 s on a 2-core CPU
"""

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchcompile as tc

max_features = 10000
sequence_length = 250
embedding_dim = 16


def load_data(num_reviews, seed=0):
    """Vectorized reviews (num_reviews, sequence_length) of int64 ids, and float 0/1 labels."""
    rng = np.random.default_rng(seed)
    sentiment = np.random.default_rng(1234).choice(np.arange(100, max_features), size=(2, 20), replace=False)
    labels = rng.integers(0, 2, size=num_reviews)
    x = np.zeros((num_reviews, sequence_length), dtype=np.int64)  # 0 is the padding id
    for i, label in enumerate(labels):
        length = rng.integers(50, sequence_length + 1)
        words = np.minimum(rng.zipf(1.5, size=length), max_features - 1)  # neutral words
        marked = rng.random(length) < 0.15  # ~15% sentiment words
        polarity = np.where(rng.random(marked.sum()) < 0.8, label, 1 - label)
        words[marked] = sentiment[polarity, rng.integers(0, 20, size=marked.sum())]
        x[i, :length] = words
    return torch.from_numpy(x), torch.from_numpy(labels.astype(np.float32))


class TextClassifier(nn.Module):
    """Keras: Sequential([layers.Embedding(max_features + 1, embedding_dim), layers.Dropout(0.2),
    layers.GlobalAveragePooling1D(), layers.Dropout(0.2), layers.Dense(1)])."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(max_features + 1, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -0.05, 0.05)  # Keras' default; torch draws N(0, 1)
        self.dropout = nn.Dropout(0.2)
        self.dense = nn.Linear(embedding_dim, 1)

    def forward(self, tokens):
        x = self.dropout(self.embedding(tokens))
        x = self.dropout(x.mean(dim=1))  # GlobalAveragePooling1D over the sequence axis
        return self.dense(x)  # one logit per review: no sigmoid, hence from_logits=True


def main(num_train=5000, num_test=2000, epochs=10, verbose="auto"):
    """Train the classifier; returns its test accuracy. The tests pass smaller numbers (reduced mode)."""
    torch.manual_seed(0)
    batch_size = 32
    # Keras: text_dataset_from_directory('aclImdb/train', batch_size=batch_size, validation_split=0.2,
    #        subset='training' / 'validation'), then .map(vectorize_text); the test set likewise
    x, y = load_data(num_train + num_test)
    split = int(num_train * 0.8)
    train_ds = DataLoader(TensorDataset(x[:split], y[:split]), batch_size=batch_size, shuffle=True)
    val_ds = DataLoader(TensorDataset(x[split:num_train], y[split:num_train]), batch_size=batch_size)
    test_ds = DataLoader(TensorDataset(x[num_train:], y[num_train:]), batch_size=batch_size)

    model = tc.Model(TextClassifier())

    # Keras: model.compile(loss=losses.BinaryCrossentropy(from_logits=True), optimizer='adam',
    #                      metrics=tf.metrics.BinaryAccuracy(threshold=0.0))
    model.compile(
        loss=tc.losses.BinaryCrossentropy(from_logits=True),
        optimizer="adam",
        metrics=[tc.metrics.BinaryAccuracy(threshold=0.0)],
    )

    # Keras: history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose)

    # Keras: loss, accuracy = model.evaluate(test_ds)
    loss, accuracy = model.evaluate(test_ds, verbose=0)
    print("Loss: ", loss)
    print("Accuracy: ", accuracy)
    print("History keys:", list(history.history))
    return accuracy


if __name__ == "__main__":
    main()
