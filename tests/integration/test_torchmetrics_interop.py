"""A real torchmetrics metric goes through compile and fit as is."""

import numpy as np
import pytest
import torch

import torchcompile as tc

torchmetrics = pytest.importorskip("torchmetrics")


def test_torchmetrics_metric_reports_in_history_under_its_name(rng):
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=-1))
    model = tc.Model(module, device="cpu")
    metric = torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")
    model.compile(
        tc.optimizers.SGD(learning_rate=0.0),
        "sparse_categorical_crossentropy",
        metrics=[metric, "sparse_categorical_accuracy"],
    )
    history = model.fit(x, y, batch_size=10, epochs=2, validation_split=0.25, verbose=0).history
    assert list(history) == [
        "loss",
        "multiclass_accuracy",
        "sparse_categorical_accuracy",
        "val_loss",
        "val_multiclass_accuracy",
        "val_sparse_categorical_accuracy",
    ]
    np.testing.assert_allclose(history["multiclass_accuracy"], history["sparse_categorical_accuracy"], rtol=1e-6)
    np.testing.assert_allclose(
        history["val_multiclass_accuracy"], history["val_sparse_categorical_accuracy"], rtol=1e-6
    )
