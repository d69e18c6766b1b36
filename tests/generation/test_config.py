"""The configs are plain, torch-free, JSON-friendly dataclasses whose check() names the bad field."""
from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from generation import GenerateConfig, GeneratorConfig


def test_config_module_imports_only_the_stdlib():
    tree = ast.parse(Path(__file__).parents[2].joinpath("generation", "config.py").read_text())
    found = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    found |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert found <= {"__future__", "dataclasses", "typing"}, found


@pytest.mark.parametrize("cls", [GeneratorConfig, GenerateConfig])
def test_defaults_pass_check_and_survive_json(cls):
    config = cls()
    config.check()
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for f in dataclasses.fields(cls):
        assert isinstance(f.default, (int, float, str, bool)), f.name


@pytest.mark.parametrize("field, value", [
    ("condition", "image"), ("keep", 0), ("keep", 1.5), ("latent", 0), ("basis", -2), ("beta", -1),
    ("beta_warmup", 2.0), ("lr", 0), ("epochs", 1.5), ("condition_with_adapter", "yes"), ("basis", 0),
])
def test_generator_config_check_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(GeneratorConfig(), **{field: value}).check()


@pytest.mark.parametrize("field, value", [("samples", 0), ("select", "best"), ("temperature", -1.0),
                                          ("seed", "x")])
def test_generate_config_check_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(GenerateConfig(), **{field: value}).check()


def test_unknown_fields_are_refused():
    with pytest.raises(ValueError, match="bogus"):
        GeneratorConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="bogus"):
        GenerateConfig.from_dict({"bogus": 1})
