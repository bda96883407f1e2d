import pytest

from torchcompile.core.registry import Registry


def test_registry_lookup_returns_entry():
    assert Registry("loss", {"mse": 1}, case_sensitive=True).lookup("mse") == 1


def test_registry_case_insensitive_lookup_ignores_case():
    assert Registry("optimizer", {"Adam": 2}, case_sensitive=False).lookup("ADAM") == 2


def test_registry_case_sensitive_lookup_refuses_other_case():
    with pytest.raises(ValueError, match="Unknown loss 'MSE'"):
        Registry("loss", {"mse": 1}, case_sensitive=True).lookup("MSE")


def test_registry_unknown_name_lists_close_matches_and_known_names():
    registry = Registry("loss", {"mean_squared_error": 1, "hinge": 2}, case_sensitive=True)
    with pytest.raises(ValueError) as info:
        registry.lookup("mean_sqared_error")
    message = str(info.value)
    assert "Did you mean 'mean_squared_error'" in message
    assert "hinge" in message and "Received: loss='mean_sqared_error'" in message


def test_registry_contains_only_strings():
    registry = Registry("metric", {"acc": 1}, case_sensitive=True)
    assert "acc" in registry and 3 not in registry
