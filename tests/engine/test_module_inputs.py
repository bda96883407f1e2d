# SPDX-License-Identifier: Apache-2.0
"""engine/module_inputs.py: how a batch's inputs reach forward (tuple, list, dict, other), and
takes_argument's per-class cache."""

import pytest
import torch
from torch import nn

from torchcompile.engine import module_inputs
from torchcompile.engine.module_inputs import call, takes_argument, takes_keywords


class _Record(nn.Module):
    """Returns how it was called: ``(args, kwargs)``."""

    def forward(self, *args, **kwargs):
        return args, kwargs


class _One(nn.Module):
    def forward(self, inputs, training=False):
        return inputs


class _Two(nn.Module):
    def forward(self, image, mask):
        return image, mask


class _KeywordOnly(nn.Module):
    def forward(self, *, image, mask):
        return image, mask


class _PositionalOnly(nn.Module):
    def forward(self, inputs, /):
        return inputs


X = torch.zeros(1)


@pytest.mark.parametrize("x", [(X, X + 1), [X, X + 1]], ids=["tuple", "list"])
def test_call_passes_a_tuple_or_list_as_positional_inputs(x):
    args, kwargs = call(_Record(), x)
    assert len(args) == 2 and args[1] is x[1] and kwargs == {}


def test_call_passes_a_tensor_as_the_single_input():
    args, kwargs = call(_Record(), X)
    assert args == (X,) and kwargs == {}


def test_call_passes_a_dict_as_keywords_when_every_key_names_an_argument():
    image, mask = call(_Two(), {"mask": X + 1, "image": X})
    assert image is not None and float(image) == 0.0 and float(mask) == 1.0


def test_call_passes_a_dict_as_keywords_to_keyword_only_arguments():
    image, mask = call(_KeywordOnly(), {"image": X, "mask": X + 1})
    assert float(mask) == 1.0


def test_call_passes_a_dict_as_keywords_to_a_forward_taking_kwargs():
    args, kwargs = call(_Record(), {"anything": X})
    assert args == () and list(kwargs) == ["anything"]


def test_call_passes_a_dict_whole_when_no_key_matches_a_single_input():
    x = {"pixels": X}
    assert call(_One(), x) is x  # `training` has a default, so forward takes one input


def test_call_passes_a_dict_whole_to_a_positional_only_input_of_the_same_name():
    x = {"inputs": X}
    assert call(_PositionalOnly(), x) is x


def test_call_refuses_a_dict_whose_keys_partly_match_naming_the_others():
    with pytest.raises(
        ValueError, match=r"has keys \['extra'\] that match no argument of _Two\.forward\(image, mask\)"
    ):
        call(_Two(), {"image": X, "extra": X})


def test_call_refuses_a_dict_none_of_whose_keys_match_several_inputs():
    with pytest.raises(ValueError, match=r"Received: x keys=\['a', 'b'\]"):
        call(_Two(), {"a": X, "b": X})


def test_call_reads_the_signature_of_the_wrapped_module():
    x = {"pixels": X}  # the wrapper (as DDP) takes **kwargs; the wrapped forward takes one input
    args, kwargs = call(_Record(), x, signature_of=_One())
    assert args == (x,) and kwargs == {}


def test_takes_keywords_is_true_for_an_empty_dict():
    assert takes_keywords(_Two(), {})


def test_takes_argument_finds_a_forward_argument():
    assert takes_argument(_One(), "training") and not takes_argument(_Two(), "training")


def test_takes_argument_reads_the_method_named():
    class Subclassed(nn.Module):
        def call(self, inputs, training=None):
            return inputs

    assert takes_argument(Subclassed(), "training", method="call")


def test_takes_argument_is_false_for_a_missing_method():
    assert not takes_argument(_One(), "training", method="call")


def test_takes_argument_caches_per_class():
    module_inputs._argument_names.cache_clear()
    takes_argument(_One(), "training")
    takes_argument(_One(), "inputs")  # another instance of the same class: no second inspection
    info = module_inputs._argument_names.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_takes_keywords_reads_a_class_signature_once_per_key_set(monkeypatch):
    class Keywords(nn.Module):
        def forward(self, features, extra=None):
            return features

    reads = []
    signature = module_inputs.inspect.signature
    monkeypatch.setattr(module_inputs.inspect, "signature", lambda f: reads.append(f) or signature(f))
    first, second = Keywords(), Keywords()
    assert module_inputs.takes_keywords(first, {"features": 1}) and module_inputs.takes_keywords(
        second, {"features": 1}
    )
    assert module_inputs.takes_keywords(first, {"features": 1, "extra": 2})
    assert len(reads) == 2
    for _ in range(2):  # a refusal is not kept: it is raised every time
        with pytest.raises(ValueError, match="match no argument"):
            module_inputs.takes_keywords(first, {"features": 1, "other": 2})


def test_takes_keywords_follows_a_forward_set_on_the_instance():
    class OneInput(nn.Module):
        def forward(self, inputs):
            return inputs

    module = OneInput()
    assert not module_inputs.takes_keywords(module, {"a": 1})
    module.forward = lambda a: a
    assert module_inputs.takes_keywords(module, {"a": 1})
