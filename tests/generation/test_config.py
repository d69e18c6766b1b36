"""The configs are torch-free pydantic models (the hub's params extend them) that refuse a bad field by name."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from generation import GenerateConfig, GeneratorConfig


def test_config_module_imports_only_the_stdlib():
    tree = ast.parse(Path(__file__).parents[2].joinpath("generation", "config.py").read_text())
    found = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    found |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert found <= {"__future__", "typing", "pydantic", "lora"}, found


@pytest.mark.parametrize("cls", [GeneratorConfig, GenerateConfig])
def test_defaults_survive_json(cls):
    config = cls()
    assert cls.model_validate(json.loads(config.model_dump_json())) == config
    for name, field in cls.model_fields.items():
        assert isinstance(field.default, (int, float, str, bool)), name


@pytest.mark.parametrize("field, value", [
    ("condition", "image"), ("keep", 0), ("keep", 1.5), ("latent", 0), ("basis", -2), ("beta", -1),
    ("beta_warmup", 2.0), ("lr", 0), ("epochs", 1.5), ("condition_with_adapter", "yes"), ("basis", 0),
])
def test_generator_config_refuses_a_bad_field_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        GeneratorConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("samples", 0), ("select", "best"), ("temperature", -1.0),
                                          ("seed", "x")])
def test_generate_config_refuses_a_bad_field_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        GenerateConfig(**{field: value})


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="bogus"):
        GeneratorConfig.model_validate({"bogus": 1})
    with pytest.raises(ValueError, match="bogus"):
        GenerateConfig(bogus=1)
