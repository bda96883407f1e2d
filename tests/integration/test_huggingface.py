# SPDX-License-Identifier: Apache-2.0
"""Real Hugging Face objects through compile / fit / evaluate / predict (issue 15): tiny BERT and
DistilBERT classifiers built from configs (offline), `datasets.Dataset`s and a DataLoader with
`transformers.default_data_collator`, the model's own loss (compile(loss=None)) and a Keras loss on
`logits`, `ModelOutput`s with extra outputs, and weights that plain transformers code reads back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchcompile as tc

transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")

VOCAB, LENGTH, N = 100, 12, 64


def _config(family, **overrides):
    if family == "bert":
        return transformers.BertConfig(
            vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=LENGTH, num_labels=3, **overrides,
        )  # fmt: skip
    return transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=LENGTH,
        num_labels=3, **overrides,
    )  # fmt: skip


def _hf_model(family="bert", seed=0, **overrides):
    torch.manual_seed(seed)
    cls = (
        transformers.BertForSequenceClassification
        if family == "bert"
        else transformers.DistilBertForSequenceClassification
    )
    return cls(_config(family, **overrides))


def _columns(seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=N)
    input_ids = rng.integers(5, VOCAB, size=(N, LENGTH))
    input_ids[:, 1] = labels + 1  # the label is written in the second token: learnable in a few steps
    attention_mask = np.ones((N, LENGTH), dtype=np.int64)
    attention_mask[: N // 2, LENGTH - 3 :] = 0  # half the rows are padded
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _dataset(seed=0):
    return datasets.Dataset.from_dict(_columns(seed)).with_format("torch")


def _own_loss(hf_model, columns):
    """The model's own mean loss over all rows, in eval mode (no dropout), as plain transformers code gets it."""
    hf_model.eval()
    with torch.no_grad():
        return float(hf_model(**{k: torch.as_tensor(v) for k, v in columns.items()}).loss)


FAMILIES = ["bert", "distilbert"]
SPARSE = dict(from_logits=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_own_loss_trains_a_transformers_model_on_a_dataset(family):
    model = tc.Model(_hf_model(family), device="cpu")
    model.compile(tc.optimizers.Adam(learning_rate=1e-2), loss=None, metrics=["accuracy"])
    before = _own_loss(model.module, _columns())
    history = model.fit(_dataset(), batch_size=16, epochs=4, verbose=0).history
    assert _own_loss(model.module, _columns()) < before
    assert history["accuracy"][-1] > history["accuracy"][0]


@pytest.mark.parametrize("family", FAMILIES)
def test_keras_loss_on_logits_equals_the_models_own_loss(family):
    model = tc.Model(_hf_model(family), device="cpu")
    model.compile("sgd", loss=tc.losses.SparseCategoricalCrossentropy(**SPARSE), metrics=["accuracy"])
    logs = model.evaluate(_dataset(), batch_size=N, verbose=0, return_dict=True)
    assert sorted(logs) == ["accuracy", "loss"]  # one loss on `logits`: no per-output keys
    assert logs["loss"] == pytest.approx(_own_loss(model.module, _columns()), rel=1e-5)


def test_keras_loss_on_logits_trains_like_the_models_own_loss():
    histories = []
    for loss in (None, tc.losses.SparseCategoricalCrossentropy(**SPARSE)):
        model = tc.Model(_hf_model(), device="cpu")
        model.compile(tc.optimizers.SGD(learning_rate=0.5), loss=loss, metrics=["accuracy"])
        histories.append(model.fit(_dataset(), batch_size=16, epochs=2, shuffle=False, verbose=0).history)
    np.testing.assert_allclose(histories[0]["accuracy"], histories[1]["accuracy"], atol=1e-6)


def test_a_dataloader_with_the_default_data_collator_trains():
    rows = datasets.Dataset.from_dict(_columns()).with_format("numpy")
    loader = torch.utils.data.DataLoader(
        [dict(row) for row in rows], batch_size=16, collate_fn=transformers.default_data_collator
    )
    model = tc.Model(_hf_model(), device="cpu")
    model.compile(tc.optimizers.Adam(learning_rate=1e-2), loss=None)
    before = _own_loss(model.module, _columns())
    model.fit(loader, epochs=3, verbose=0)
    assert _own_loss(model.module, _columns()) < before


def test_extra_outputs_leave_the_loss_on_logits_and_predict_returns_them_all():
    hf_model = _hf_model(output_hidden_states=True)  # outputs: logits and hidden_states (a tuple per layer)
    model = tc.Model(hf_model, device="cpu")
    model.compile("sgd", loss=tc.losses.SparseCategoricalCrossentropy(**SPARSE))
    logs = model.evaluate(_dataset(), batch_size=N, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(_own_loss(hf_model, _columns()), rel=1e-5)
    predictions = model.predict(_dataset(), batch_size=16, verbose=0)
    assert sorted(predictions) == ["hidden_states", "logits"]  # no `loss`: predict passes no labels
    assert predictions["logits"].shape == (N, 3) and len(predictions["hidden_states"]) == 3  # embeddings + 2 layers
    assert predictions["hidden_states"][-1].shape == (N, LENGTH, 16)


def test_predict_returns_the_logits_of_plain_transformers_code():
    model = tc.Model(_hf_model(), device="cpu")
    predictions = model.predict(_dataset(), batch_size=16, verbose=0)  # the labels column stays out of the inputs
    columns = _columns()
    with torch.no_grad():
        model.module.eval()
        expected = model.module(
            input_ids=torch.as_tensor(columns["input_ids"]), attention_mask=torch.as_tensor(columns["attention_mask"])
        ).logits
    assert list(predictions) == ["logits"]
    np.testing.assert_allclose(predictions["logits"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_a_dict_loss_keyed_by_logits_is_keras_multi_output():
    model = tc.Model(_hf_model(), device="cpu")
    model.compile("sgd", loss={"logits": tc.losses.SparseCategoricalCrossentropy(**SPARSE)})
    logs = model.evaluate(_dataset(), batch_size=N, verbose=0, return_dict=True)
    assert sorted(logs) == ["logits_loss", "loss"]  # the carried `loss` is not an output
    assert logs["logits_loss"] == pytest.approx(logs["loss"], rel=1e-6)


def test_weights_round_trip_and_plain_transformers_reads_them(tmp_path):
    model = tc.Model(_hf_model(seed=0), device="cpu")
    model.compile(tc.optimizers.Adam(learning_rate=1e-2), loss=None)
    model.fit(_dataset(), batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "bert.weights.pt"
    model.save_weights(path)
    restored = tc.Model(_hf_model(seed=1), device="cpu")
    restored.load_weights(path)
    np.testing.assert_array_equal(
        restored.predict(_dataset(), verbose=0)["logits"], model.predict(_dataset(), verbose=0)["logits"]
    )
    plain = _hf_model(seed=2)
    plain.load_state_dict(torch.load(path, weights_only=True))  # the module's own state_dict keys
    assert _own_loss(plain, _columns()) == pytest.approx(_own_loss(model.module, _columns()), rel=1e-6)
