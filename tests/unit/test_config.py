"""dlx/config.py: layering, type checks, did-you-mean, every problem at once."""

from __future__ import annotations

import pytest

from dlx import config
from dlx.errors import ConfigError
from dlx.families.cnn.config import CNNConfig, ConvLayerConfig


def test_defaults_validate_and_round_trip_through_yaml(tmp_path):
    resolved = config.build(CNNConfig)
    path = tmp_path / "c.yaml"
    path.write_text(config.to_yaml(resolved))
    assert config.build(CNNConfig, path) == resolved


def test_layers_apply_in_order_file_then_flags_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim: {lr: 0.5, epochs: 7}\nmodel: {pool: avg}\n")
    resolved = config.build(CNNConfig, path, flags={"optim.lr": 0.25, "optim.epochs": None},
                            overrides=["optim.lr=0.125"])
    assert resolved.optim.lr == 0.125  # --set beats the flag, which beats the file
    assert resolved.optim.epochs == 7  # a flag left as None does not override
    assert resolved.model.pool == "avg"


def test_partial_section_keeps_family_defaults():
    # train-cnn's optim defaults (onecycle) survive overriding one optim key.
    resolved = config.build(CNNConfig, overrides=["optim.lr=0.01"])
    assert resolved.optim.schedule == CNNConfig().optim.schedule == "onecycle"


def test_all_problems_reported_together_with_paths_and_suggestions():
    with pytest.raises(ConfigError) as caught:
        config.build(CNNConfig, overrides=[
            "modle.pool=avg", "optim.lr=abc", "model.pool=mx", "optim.epochs=0",
            "model.conv_layers=[{channels: 0}]",
        ])
    problems = caught.value.problems
    assert "modle: unknown key (did you mean 'model'?)" in problems
    assert any(p.startswith("optim.lr: expected float") for p in problems)
    assert any("model.pool: 'mx' is not one of" in p and "did you mean 'max'" in p for p in problems)
    assert "optim.epochs: must be >= 1, got 0" in problems
    assert "model.conv_layers[0].channels: must be >= 1, got 0" in problems
    assert len(problems) == 5


def test_yaml_scientific_notation_without_dot_is_a_float():
    assert config.build(CNNConfig, overrides=["optim.lr=1e-2"]).optim.lr == 0.01


def test_bool_is_not_an_int_and_int_is_not_a_bool():
    with pytest.raises(ConfigError) as caught:
        config.build(CNNConfig, overrides=["optim.epochs=true", "run.compile=1"])
    assert len(caught.value.problems) == 2


def test_list_of_dataclasses_is_built():
    resolved = config.build(CNNConfig, overrides=["model.conv_layers=[{channels: 8, kernel: 5}]"])
    assert resolved.model.conv_layers == [ConvLayerConfig(channels=8, kernel=5)]


def test_bad_yaml_and_missing_file_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.build(CNNConfig, bad)
    with pytest.raises(ConfigError, match="does not exist"):
        config.build(CNNConfig, tmp_path / "missing.yaml")
    top_list = tmp_path / "list.yaml"
    top_list.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        config.build(CNNConfig, top_list)


def test_set_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        config.build(CNNConfig, overrides=["optim.lr"])


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    import dataclasses
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            keys += _leaf_keys(hints[field.name], f"{prefix}{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


@pytest.mark.parametrize("family", ["cnn", "transformer", "gan"])
def test_every_config_leaf_has_help(family):
    """Flag help is taken from these docs (dlx/flags.py), so none may be empty."""
    from dlx.flags import field_info
    from dlx.registry import config_class

    cls = config_class(family)
    keys = _leaf_keys(cls)
    assert {"optim.epochs", "run.seed", "data.dataset" if family != "transformer" else "data.task"} <= set(keys)
    for key in keys:
        assert field_info(cls, key).help, key
