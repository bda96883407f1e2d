# SPDX-License-Identifier: Apache-2.0
"""examples/huggingface_text_classification.py in reduced mode: a real transformers BERT, built from a
config (offline), fine-tuned on a datasets.Dataset with its own loss and with a Keras loss on `logits`."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("datasets")

# Chance is 0.50; the full run (1000 reviews, 3 epochs) reaches about 0.77; this one about 0.79.
REDUCED_TEST_ACCURACY_BAR = 0.65


@pytest.fixture(scope="module")
def example(load_example):
    return load_example("huggingface_text_classification")


@pytest.fixture(scope="module")
def run(example):
    """One reduced run (about 10 s on 2 cores), shared by the tests below."""
    return example.main(num_train=600, num_test=200, epochs=3, verbose=0)


def test_huggingface_load_data_is_a_torch_formatted_dataset_in_hf_layout(example):
    data = example.load_data(20)
    batch = data[:4]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == (4, example.sequence_length) and str(batch["input_ids"].dtype) == "torch.int64"
    assert int(batch["input_ids"].max()) < example.vocab_size
    assert ((batch["input_ids"] != example.PAD) == batch["attention_mask"].bool()).all()  # the mask covers the tokens


def test_huggingface_keras_loss_on_logits_learns_and_logs_keras_keys(run):
    history = run["keras_loss_history"]
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]  # no per-output keys
    assert history["loss"][-1] < history["loss"][0]
    assert run["keras_loss_results"]["accuracy"] > REDUCED_TEST_ACCURACY_BAR


def test_huggingface_own_loss_learns(run):
    assert run["own_loss_history"]["accuracy"][-1] > run["own_loss_history"]["accuracy"][0]
    assert run["own_loss_results"]["accuracy"] > REDUCED_TEST_ACCURACY_BAR


def test_huggingface_own_loss_and_keras_loss_train_alike(run):
    # Same seed, same data; BERT's own loss is the mean cross-entropy of its logits, which is what
    # SparseCategoricalCrossentropy(from_logits=True) computes: the two runs track each other.
    np.testing.assert_allclose(run["own_loss_history"]["accuracy"], run["keras_loss_history"]["accuracy"], atol=0.02)


def test_huggingface_own_loss_is_historys_loss(run):
    history = run["own_loss_history"]
    assert "loss" in history and "val_loss" in history and history["loss"][-1] < history["loss"][0]


def test_huggingface_predict_returns_the_logits_as_arrays(run):
    logits = run["logits"]
    assert logits.shape == (200, 2) and logits.dtype == np.float32
    assert run["predicted_accuracy"] == pytest.approx(run["keras_loss_results"]["accuracy"])


def test_huggingface_weights_round_trip(run):
    np.testing.assert_array_equal(run["restored_logits"], run["logits"])
