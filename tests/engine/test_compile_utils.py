# SPDX-License-Identifier: Apache-2.0
"""engine/compile_utils.py: CompiledLoss (built from the first batch, per-output trackers, the
first-batch checks) and CompiledMetrics (ids resolved from shapes, History's names)."""

import dataclasses
import typing

import pytest
import torch

import torchcompile as tc
from torchcompile.engine.compile_utils import CompiledLoss, CompiledMetrics, check_ids


class _CountingLoss(CompiledLoss):
    """A CompiledLoss that counts its first-batch checks."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.checked = 0

    def check_first_batch(self, y_true, y_pred):
        self.checked += 1
        super().check_first_batch(y_true, y_pred)


def _two_outputs():
    y_true = (torch.zeros(4, 1), torch.ones(4, 1))
    y_pred = (torch.ones(4, 1), torch.full((4, 1), 3.0))  # mse 1 on the first output, 4 on the second
    return y_true, y_pred


# ---------------------------------------------------------------- CompiledLoss
def test_compiled_loss_builds_from_the_first_batch():
    loss = CompiledLoss("mse")
    assert not loss.built
    loss(torch.zeros(4, 1), torch.ones(4, 1))
    assert loss.built and loss.names is None and loss.metrics == []


def test_compiled_loss_computes_a_single_output_loss():
    value = CompiledLoss("mse")(torch.zeros(4, 1), torch.full((4, 1), 2.0))
    torch.testing.assert_close(value, torch.tensor(4.0))


def test_compiled_loss_weights_a_single_output_loss():
    value = CompiledLoss("mse", loss_weights=0.5)(torch.zeros(4, 1), torch.full((4, 1), 2.0))
    torch.testing.assert_close(value, torch.tensor(2.0))


def test_compiled_loss_sums_weighted_losses_over_outputs():
    y_true, y_pred = _two_outputs()
    total = CompiledLoss("mse", loss_weights=[1.0, 0.5])(y_true, y_pred)
    torch.testing.assert_close(total, torch.tensor(1.0 + 0.5 * 4.0))


def test_compiled_loss_tracks_unweighted_per_output_losses():
    y_true, y_pred = _two_outputs()
    loss = CompiledLoss("mse", loss_weights=[1.0, 0.5])
    loss(y_true, y_pred)
    assert [m.name for m in loss.metrics] == ["output_1_loss", "output_2_loss"]
    assert [float(m.result()) for m in loss.metrics] == [1.0, 4.0]  # Keras tracks them before weighting


def test_compiled_loss_weights_its_trackers_by_batch_size():
    loss = CompiledLoss("mse")
    loss((torch.zeros(1, 1), torch.zeros(1, 1)), (torch.zeros(1, 1), torch.ones(1, 1)))  # output_2: 1 over 1 sample
    loss((torch.zeros(3, 1), torch.zeros(3, 1)), (torch.zeros(3, 1), torch.zeros(3, 1)))  # output_2: 0 over 3
    assert float(loss.metrics[1].result()) == pytest.approx(0.25)


def test_compiled_loss_names_trackers_by_dict_output_keys():
    loss = CompiledLoss({"a": "mse", "b": "mae"})
    loss({"a": torch.zeros(2, 1), "b": torch.zeros(2, 1)}, {"a": torch.ones(2, 1), "b": torch.ones(2, 1)})
    assert [m.name for m in loss.metrics] == ["a_loss", "b_loss"]


def test_compiled_loss_skips_outputs_without_a_loss():
    y_true, y_pred = _two_outputs()
    loss = CompiledLoss(["mse", None])
    torch.testing.assert_close(loss(y_true, y_pred), torch.tensor(1.0))
    assert float(loss.metrics[1].count) == 0.0


def test_compiled_loss_refuses_outputs_that_all_lack_a_loss():
    y_true, y_pred = _two_outputs()
    with pytest.raises(ValueError, match="No output has a loss"):
        CompiledLoss([None, None])(y_true, y_pred)


def test_compiled_loss_refuses_a_dict_loss_naming_unknown_outputs():
    y_true = {"a": torch.zeros(2, 1), "b": torch.zeros(2, 1)}
    y_pred = {"a": torch.ones(2, 1), "b": torch.ones(2, 1)}
    with pytest.raises(ValueError, match=r"names outputs \['c'\].*its outputs are \['a', 'b'\]"):
        CompiledLoss({"a": "mse", "c": "mae"})(y_true, y_pred)


def test_compiled_loss_refuses_a_loss_list_of_the_wrong_length():
    y_true, y_pred = _two_outputs()
    with pytest.raises(ValueError, match="`loss` has 3 entries but the module returns 2 outputs"):
        CompiledLoss(["mse", "mse", "mse"])(y_true, y_pred)


def test_compiled_loss_refuses_targets_missing_an_output():
    y_pred = {"a": torch.ones(2, 1), "b": torch.ones(2, 1)}
    with pytest.raises(ValueError, match=r"Targets are missing for outputs \['b'\]"):
        CompiledLoss("mse")({"a": torch.zeros(2, 1)}, y_pred)


@pytest.mark.parametrize(
    "y_true, y_pred, function",
    [
        (torch.zeros(4, 1), torch.full((4, 1), 0.5), "binary_crossentropy"),
        (torch.zeros(4, dtype=torch.long), torch.full((4, 3), 1 / 3), "sparse_categorical_crossentropy"),
        (torch.eye(3)[[0, 1, 2, 0]], torch.full((4, 3), 1 / 3), "categorical_crossentropy"),
    ],
)
def test_compiled_loss_resolves_crossentropy_from_shapes(y_true, y_pred, function):
    loss = CompiledLoss("crossentropy")
    loss(y_true, y_pred)
    resolved = loss.entries[0][0]
    assert resolved.fn.__name__ == function and resolved.name == "crossentropy"  # Keras keeps the name given


def test_compiled_loss_skips_first_batch_checks_unless_requested():
    loss = _CountingLoss("mse")
    loss(torch.zeros(2, 1), torch.ones(2, 1))
    assert loss.checked == 0


def test_compiled_loss_runs_first_batch_checks_once_after_request_checks():
    loss = _CountingLoss("mse")
    loss.request_checks()
    assert loss.checks_pending
    loss(torch.zeros(2, 1), torch.ones(2, 1))
    loss(torch.zeros(2, 1), torch.ones(2, 1))
    assert loss.checked == 1 and not loss.checks_pending


def test_compiled_loss_first_batch_check_refuses_logits_for_a_probability_loss():
    loss = CompiledLoss("binary_crossentropy")
    loss.request_checks()
    with pytest.raises(ValueError, match="looks like logits"):
        loss(torch.zeros(2, 1), torch.tensor([[-3.0], [2.0]]))


def test_compiled_loss_first_batch_check_also_checks_the_requested_labels():
    loss = CompiledLoss("sparse_categorical_crossentropy")
    loss.request_checks(torch.tensor([0, 1, 5]))  # the run's whole label array: 5 is out of range
    with pytest.raises(ValueError, match=r"class labels in \[0, 3\)"):
        loss(torch.tensor([0, 1]), torch.full((2, 3), 1 / 3))


def test_compiled_loss_check_labels_refuses_out_of_range_sparse_labels():
    loss = CompiledLoss("sparse_categorical_crossentropy")
    loss(torch.tensor([0, 1]), torch.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"labels span \[0, 3\]"):
        loss.check_labels(torch.tensor([0, 3]))


# ---------------------------------------------------------------- CompiledMetrics
def _names(metrics):
    return [m.name for m in metrics.metrics]


@pytest.mark.parametrize(
    "y_true, y_pred, cls",
    [
        (torch.zeros(4, 1), torch.full((4, 1), 0.5), tc.metrics.BinaryAccuracy),
        (torch.zeros(4, dtype=torch.long), torch.full((4, 3), 1 / 3), tc.metrics.SparseCategoricalAccuracy),
        (torch.eye(3)[[0, 1, 2, 0]], torch.full((4, 3), 1 / 3), tc.metrics.CategoricalAccuracy),
    ],
)
def test_compiled_metrics_resolve_accuracy_from_shapes(y_true, y_pred, cls):
    metrics = CompiledMetrics(["accuracy"])
    metrics.update_state(y_true, y_pred)
    assert type(metrics.metrics[0]) is cls and _names(metrics) == ["accuracy"]


def test_compiled_metrics_keep_the_id_the_user_wrote_as_the_name():
    metrics = CompiledMetrics(["mean_absolute_error", "acc"])
    metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    assert _names(metrics) == ["mean_absolute_error", "acc"]


# The names below are those of Keras 3.15's compile_utils.CompileMetrics for the same arguments.
def test_compiled_metrics_number_duplicate_names_as_keras():
    metrics = CompiledMetrics(["mae", "mae", "mae"])
    metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    assert _names(metrics) == ["mae", "mae_1", "mae_2"]


def test_compiled_metrics_prefix_a_weighted_duplicate_with_weighted():
    metrics = CompiledMetrics(["mae"], weighted_metrics=["mae", "mae"])
    metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    assert _names(metrics) == ["mae", "weighted_mae", "weighted_mae_1"]


def test_compiled_metrics_keep_a_weighted_name_that_clashes_with_nothing():
    metrics = CompiledMetrics(None, weighted_metrics=["mae"])
    metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    assert _names(metrics) == ["mae"]


def test_compiled_metrics_prefix_output_names_of_a_multi_output_module():
    y_true, y_pred = _two_outputs()
    metrics = CompiledMetrics([["mae"], ["mae"]], weighted_metrics=[["mae"], ["mae"]])
    metrics.update_state(y_true, y_pred)
    assert _names(metrics) == ["output_1_mae", "output_2_mae", "output_1_weighted_mae", "output_2_weighted_mae"]


def test_compiled_metrics_repeat_a_flat_id_list_for_every_output():
    y_true, y_pred = _two_outputs()  # errors of 1 and 2
    metrics = CompiledMetrics(["mae"])
    metrics.update_state(y_true, y_pred)
    assert {k: float(v) for k, v in metrics.results().items()} == {"output_1_mae": 1.0, "output_2_mae": 2.0}


def test_compiled_metrics_give_each_output_its_own_metrics():
    y_true, y_pred = _two_outputs()  # errors of 1 and 2
    metrics = CompiledMetrics({"output_2": ["mae"]})
    metrics.update_state(y_true, y_pred)
    assert {k: float(v) for k, v in metrics.results().items()} == {"output_2_mae": 2.0}


def test_compiled_metrics_give_each_output_its_own_copy_of_a_metric_object():
    y_true, y_pred = _two_outputs()  # errors of 1 and 2
    metrics = CompiledMetrics([tc.metrics.MeanAbsoluteError()])
    try:
        metrics.update_state(y_true, y_pred)
    except ValueError:
        return  # refusing it, as Keras does, fixes it too
    assert {k: float(v) for k, v in metrics.results().items()} == {
        "output_1_mean_absolute_error": 1.0,
        "output_2_mean_absolute_error": 2.0,
    }


def test_compiled_metrics_pass_sample_weight_only_to_weighted_metrics():
    metrics = CompiledMetrics(["mae"], weighted_metrics=["mae"])
    metrics.update_state(torch.zeros(2, 1), torch.tensor([[1.0], [3.0]]), sample_weight=torch.tensor([1.0, 0.0]))
    assert {k: float(v) for k, v in metrics.results().items()} == {"mae": 2.0, "weighted_mae": 1.0}


def test_compiled_metrics_reset_state_clears_every_metric():
    metrics = CompiledMetrics(["mae"])
    metrics.update_state(torch.zeros(2, 1), torch.ones(2, 1))
    metrics.reset_state()
    assert float(metrics.metrics[0].count) == 0.0


# ---------------------------------------------------------------- check_ids
@pytest.mark.parametrize(
    "loss, metrics, weighted, match",
    [
        ("mese", None, None, "Unknown loss 'mese'. Did you mean 'mse'"),
        ("mse", ["maee"], None, "Unknown metric 'maee'. Did you mean 'mae'"),
        ("mse", None, {"out": ["maee"]}, "Unknown metric 'maee'"),
    ],
)
def test_check_ids_refuses_unknown_ids_with_close_matches(loss, metrics, weighted, match):
    with pytest.raises(ValueError, match=match):
        check_ids(loss, metrics, weighted)


def test_check_ids_leaves_shape_dependent_ids_for_the_first_batch():
    check_ids("crossentropy", ["accuracy", "acc", "ce"], None)  # resolved later, from shapes


# ---------------------------------------------------------------- structured outputs (issue 15)
class _Pair(typing.NamedTuple):
    logits: torch.Tensor
    hidden: torch.Tensor


@dataclasses.dataclass
class _Output:
    hidden: torch.Tensor
    logits: torch.Tensor | None = None


def _structured(kind, with_logits=True):
    logits, hidden = torch.full((2, 1), 2.0), torch.full((2, 1), 5.0)
    names = ("logits", "hidden") if with_logits else ("out", "hidden")
    if kind == "dict":
        return dict(zip(names, (logits, hidden)))
    if kind == "namedtuple":
        return _Pair(logits, hidden)
    return _Output(hidden=hidden, logits=logits)


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "dataclass"])
def test_compiled_loss_trains_one_loss_on_the_logits_output(kind):
    loss = CompiledLoss("mse")
    value = loss(torch.zeros(2, 1), _structured(kind))
    torch.testing.assert_close(value, torch.tensor(4.0))  # logits only: (2 - 0)**2, not hidden's 25
    assert loss.names is None and loss.metrics == []  # one output: no hidden_loss tracker


def test_compiled_loss_refuses_one_loss_for_several_outputs_without_logits():
    with pytest.raises(ValueError, match=r"several outputs \['out', 'hidden'\].*compile\(loss=\{'out': \.\.\.\}"):
        CompiledLoss("mse")(torch.zeros(2, 1), _structured("dict", with_logits=False))


def test_compiled_loss_leaves_out_outputs_that_are_none():
    y_pred = _Output(hidden=torch.ones(2, 1), logits=None)  # one output left: it is the prediction
    torch.testing.assert_close(CompiledLoss("mse")(torch.zeros(2, 1), y_pred), torch.tensor(1.0))


def test_compiled_loss_refuses_one_loss_and_one_target_for_a_list_of_outputs():
    with pytest.raises(ValueError, match=r"returns 2 outputs \(a tuple\) but `y` is one target"):
        CompiledLoss("mse")(torch.zeros(2, 1), (torch.ones(2, 1), torch.ones(2, 1)))


def test_compiled_loss_takes_the_only_output_of_a_one_entry_dict():
    value = CompiledLoss("mse")(torch.zeros(2, 1), {"out": torch.ones(2, 1)})
    torch.testing.assert_close(value, torch.tensor(1.0))


def test_compiled_loss_ignores_a_carried_loss_when_choosing_the_prediction():
    y_pred = {"loss": torch.tensor(7.0), "scores": torch.ones(2, 1)}  # a carried loss is not an output
    torch.testing.assert_close(CompiledLoss("mse")(torch.zeros(2, 1), y_pred), torch.tensor(1.0))


def test_compiled_loss_dict_keyed_by_output_name_stays_multi_output():
    loss = CompiledLoss({"hidden": "mse"})
    value = loss(torch.zeros(2, 1), _structured("dict"))
    torch.testing.assert_close(value, torch.tensor(25.0))
    assert [m.name for m in loss.metrics] == ["logits_loss", "hidden_loss"]


def test_compiled_loss_names_namedtuple_outputs_by_field():
    loss = CompiledLoss({"hidden": "mse"})
    loss((torch.zeros(2, 1), torch.zeros(2, 1)), _structured("namedtuple"))
    assert [m.name for m in loss.metrics] == ["logits_loss", "hidden_loss"]


def test_compiled_loss_targets_per_output_keep_broadcasting_one_loss():
    y_pred = _structured("dict", with_logits=False)
    loss = CompiledLoss("mse")
    loss({"out": torch.zeros(2, 1), "hidden": torch.zeros(2, 1)}, y_pred)  # Keras: one loss, a target per output
    assert [m.name for m in loss.metrics] == ["out_loss", "hidden_loss"]


def test_compiled_loss_first_batch_check_looks_at_the_logits_output():
    loss = CompiledLoss("binary_crossentropy")
    loss.request_checks()
    y_pred = {"logits": torch.tensor([[-3.0], [2.0]]), "probabilities": torch.full((2, 1), 0.5)}
    with pytest.raises(ValueError, match="looks like logits"):
        loss(torch.zeros(2, 1), y_pred)


@pytest.mark.parametrize("kind", ["dict", "namedtuple", "dataclass"])
def test_compiled_metrics_follow_the_logits_output(kind):
    metrics = CompiledMetrics(["mae"])
    metrics.update_state(torch.zeros(2, 1), _structured(kind))
    assert {k: float(v) for k, v in metrics.results().items()} == {"mae": 2.0}


def test_compiled_metrics_refuse_flat_metrics_for_several_outputs_without_logits():
    with pytest.raises(ValueError, match=r"compile\(\) got one list of metrics.*metrics=\{'out': \[\.\.\.\]\}"):
        CompiledMetrics(["mae"]).update_state(torch.zeros(2, 1), _structured("dict", with_logits=False))


def test_compiled_metrics_without_metrics_accept_any_structured_output():
    metrics = CompiledMetrics(None)
    metrics.update_state(torch.zeros(2, 1), _structured("dict", with_logits=False))
    assert metrics.metrics == []


def test_compiled_metrics_keyed_by_output_name_stay_per_output():
    metrics = CompiledMetrics({"hidden": ["mae"]})
    metrics.update_state(torch.zeros(2, 1), _structured("dict"))
    assert {k: float(v) for k, v in metrics.results().items()} == {"hidden_mae": 5.0}


def test_compiled_metrics_detach_a_dataclass_prediction():
    y_pred = _Output(hidden=torch.ones(2, 1), logits=torch.ones(2, 1, requires_grad=True))
    metric = tc.metrics.MeanAbsoluteError()
    CompiledMetrics([metric]).update_state(torch.zeros(2, 1), y_pred)
    assert not any(t.requires_grad for t in metric.buffers())
