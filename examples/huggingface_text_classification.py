# SPDX-License-Identifier: Apache-2.0
"""Fine-tune a Hugging Face model for sequence classification with compile / fit, offline.

A real `transformers` BertForSequenceClassification, built from a small config (2 layers, a
500-token vocabulary, hidden size 32: nothing is downloaded), trained on a `datasets.Dataset`
of generated token ids in the Hugging Face layout: `input_ids`, `attention_mask`, `labels`.
torchcompile splits each dict batch into the forward's keyword arguments and `y = labels`,
and passes `labels` to the forward too, since it takes them.

Two ways to train, as the Hugging Face docs and Keras' own BERT guides do:
  1. the model's own loss: `compile(loss=None)` trains on `output.loss`;
  2. a Keras loss on the `logits` output: with one loss and one target, a structured output
     (Hugging Face's `ModelOutput`, a dict, a namedtuple, a dataclass) is trained through its
     output named `logits`.
Then `evaluate`, `predict` (the output structure as arrays: `{"logits": ...}`), and a
`save_weights` / `load_weights` round trip.

Stand-in data: each "review" is padded token ids with a few sentiment tokens, four in five
agreeing with the label, so the task is learnable but not trivial.

    python examples/huggingface_text_classification.py      # about 10 s on a 2-core CPU
"""

import os
import tempfile

import numpy as np
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

import torchcompile as tc

vocab_size = 500
sequence_length = 32
num_labels = 2
PAD, CLS = 0, 1  # BERT's [PAD] and [CLS] positions in our tiny vocabulary


def build_model(seed=0):
    """A 2-layer BERT classifier from a config: randomly initialised, offline."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=sequence_length,
        num_labels=num_labels,
        pad_token_id=PAD,
    )
    return BertForSequenceClassification(config)


def load_data(num_reviews, seed=0):
    """A `datasets.Dataset` of `input_ids`, `attention_mask` and `labels`, formatted for torch."""
    rng = np.random.default_rng(seed)
    sentiment = np.random.default_rng(1234).choice(np.arange(10, vocab_size), size=(num_labels, 8), replace=False)
    labels = rng.integers(0, num_labels, size=num_reviews)
    input_ids = np.full((num_reviews, sequence_length), PAD, dtype=np.int64)
    attention_mask = np.zeros((num_reviews, sequence_length), dtype=np.int64)
    for i, label in enumerate(labels):
        length = rng.integers(8, sequence_length + 1)
        words = rng.integers(10, vocab_size, size=length)  # neutral words (rarely a sentiment one)
        marked = rng.random(length) < 0.2  # ~20% sentiment words
        polarity = np.where(rng.random(marked.sum()) < 0.8, label, 1 - label)
        words[marked] = sentiment[polarity, rng.integers(0, 8, size=marked.sum())]
        words[0] = CLS
        input_ids[i, :length] = words
        attention_mask[i, :length] = 1
    columns = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    return Dataset.from_dict(columns).with_format("torch")


def fine_tune(train, test, loss, epochs, verbose, seed=0):
    """compile + fit + evaluate a fresh BERT; ``loss=None`` trains on the model's own ``output.loss``."""
    model = tc.Model(build_model(seed), device="auto")
    model.compile(optimizer=tc.optimizers.AdamW(learning_rate=3e-3), loss=loss, metrics=["accuracy"])
    history = model.fit(train, validation_data=test, batch_size=32, epochs=epochs, verbose=verbose)
    results = model.evaluate(test, batch_size=64, verbose=verbose, return_dict=True)
    return model, history, results


def main(num_train=1000, num_test=300, epochs=3, verbose="auto"):
    """Both ways of training, then predict and a weights round trip; returns the numbers.

    The tests pass smaller numbers (reduced mode).
    """
    train, test = load_data(num_train, seed=0), load_data(num_test, seed=1)

    # 1. The model's own loss: Hugging Face computes it from `labels`; compile(loss=None) trains on it.
    own_model, own_history, own_results = fine_tune(train, test, None, epochs, verbose)
    print(f"model's own loss:  test accuracy {own_results['accuracy']:.3f}")

    # 2. A Keras loss on the `logits` output (the output structure also carries `loss`, which is ignored).
    keras_loss = tc.losses.SparseCategoricalCrossentropy(from_logits=True)
    model, history, results = fine_tune(train, test, keras_loss, epochs, verbose)
    print(f"Keras loss on logits: test loss {results['loss']:.4f}, test accuracy {results['accuracy']:.3f}")

    # predict returns the output structure as NumPy arrays; the labels column is left out of the inputs.
    predictions = model.predict(test, batch_size=64, verbose=0)
    logits = predictions["logits"]
    labels = test.with_format("numpy")["labels"][:]
    predicted_accuracy = float((logits.argmax(axis=-1) == labels).mean())

    # save_weights / load_weights: the module's state_dict, read back into a fresh model.
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bert.weights.pt")
        model.save_weights(path)
        restored = tc.Model(build_model(seed=1), device="auto")
        restored.load_weights(path)
        restored_logits = restored.predict(test, batch_size=64, verbose=0)["logits"]
    return {
        "own_loss_history": own_history.history,
        "own_loss_results": own_results,
        "keras_loss_history": history.history,
        "keras_loss_results": results,
        "logits": logits,
        "predicted_accuracy": predicted_accuracy,
        "restored_logits": restored_logits,
    }


if __name__ == "__main__":
    main()
