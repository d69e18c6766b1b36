"""Only one family can be one generator's input: mixed ranks, targets, bases or shapes are refused by name."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from generation import GenerationError, GeneratorConfig, Member, check_family, family_mismatches, train_generator
from lora import Adapter


def _config(r=8, targets=("q_proj", "v_proj"), base="smollm2", alpha=16):
    return {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": list(targets),
            "base_model_name_or_path": base}


def test_family_mismatches_lists_only_the_offending_inputs_with_reasons():
    configs = {"acme/a@1": _config(), "acme/b@3": _config(r=16), "acme/c@1": _config(targets=("q_proj",)),
               "acme/d@2": _config(base="gemma3-270m"), "acme/e@1": _config(targets=("v_proj", "q_proj"))}
    problems = family_mismatches(configs)
    assert len(problems) == 3
    by_name = {p.split(": ", 1)[0]: p for p in problems}
    assert set(by_name) == {"acme/b@3", "acme/c@1", "acme/d@2"}  # target order does not matter (e is fine)
    assert "rank 16" in by_name["acme/b@3"] and "8" in by_name["acme/b@3"]
    assert "target modules" in by_name["acme/c@1"]
    assert "gemma3-270m" in by_name["acme/d@2"]


def test_a_family_that_agrees_has_no_mismatches():
    assert family_mismatches({"a": _config(), "b": _config(alpha=16.0), "c": _config()}) == []
    assert family_mismatches({"only": _config(r=4)}) == []


def test_the_family_module_is_torch_free():
    tree = ast.parse(Path(__file__).parents[2].joinpath("generation", "family.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"__future__", "json", "collections"}, imported


def _adapter(d_out: int, r: int = 4, base: str = "tiny-base") -> Adapter:
    modules = {"model.layers.0.self_attn.q_proj": (torch.ones(r, 16), torch.ones(d_out, r))}
    return Adapter.from_modules(base, modules, r=r, lora_alpha=8)


def test_check_family_catches_same_config_with_other_tensor_shapes():
    adapters = {"x": _adapter(16), "y": _adapter(16), "z": _adapter(32)}
    problems = check_family(adapters)
    assert len(problems) == 1 and problems[0].startswith("z: ") and "shape" in problems[0]
    assert check_family([_adapter(16), _adapter(16)]) == []


def test_train_generator_refuses_a_mixed_family_naming_the_offender():
    members = [Member("sorting", [_adapter(16)], torch.zeros(4)), Member("counting", [_adapter(16)], torch.ones(4)),
               Member("odd", [_adapter(16, r=2)], torch.ones(4))]
    with pytest.raises(GenerationError) as info:
        train_generator(members, GeneratorConfig(epochs=1))
    assert "odd checkpoint 2" in str(info.value) and "rank 2" in str(info.value)
    assert "sorting" not in str(info.value)
