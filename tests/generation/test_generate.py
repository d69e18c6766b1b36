"""generate: seeded, a real PEFT adapter for the base, likelihood selection, and generators that survive storage."""
from __future__ import annotations

import pytest
import torch
from peft import PeftModel

from tests.generation.conftest import BASE
from generation import GenerateConfig, GenerationError, Generator, generate
from lora import Adapter
from lora.bases import module_shapes, tiny_model
from lora.evaluation import applied, loglik


def _same(a: Adapter, b: Adapter) -> bool:
    return a.config == b.config and a.tensors.keys() == b.tensors.keys() and all(
        torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)


def test_seeded_generate_twice_gives_bit_identical_adapters(generator, condition):
    first = generate(generator, condition, GenerateConfig(seed=7))
    second = generate(generator, condition, GenerateConfig(seed=7))
    assert _same(first.adapter, second.adapter)
    assert first.scores is None and first.chosen == 0
    other = generate(generator, condition, GenerateConfig(seed=8))
    assert not _same(first.adapter, other.adapter)


def test_more_samples_only_add_candidates_after_the_first(generator, condition):
    one = generate(generator, condition, GenerateConfig(samples=1, seed=3))
    four = generate(generator, condition, GenerateConfig(samples=4, seed=3))
    assert len(four.candidates) == 4 and _same(four.adapter, one.adapter) and four.chosen == 0
    assert not _same(four.candidates[1], four.candidates[0])


def test_generated_adapter_fits_the_base_and_loads_with_peft_unchanged(generator, condition, base, tmp_path):
    adapter = generate(generator, condition, GenerateConfig(seed=1)).adapter
    model, tok = base
    assert adapter.mismatches(module_shapes(model)) == []
    assert adapter.base_model == BASE and adapter.config["r"] == 8
    adapter.save(tmp_path / "generated")
    fresh, _ = tiny_model("llama", seed=0)  # PeftModel.from_pretrained wraps in place: not the shared cached base
    peft_model = PeftModel.from_pretrained(fresh, str(tmp_path / "generated"))
    peft_model.eval()
    loaded = Adapter.from_peft_model(peft_model)
    assert all(torch.equal(loaded.tensors[k], v) for k, v in adapter.tensors.items())
    batch = tok(["sort: cat ant dog ="], return_tensors="pt")
    with torch.no_grad(), applied(model, adapter) as reference:
        expected = reference(**batch).logits
        got = peft_model(**batch).logits
    torch.testing.assert_close(got, expected)
    with torch.no_grad():
        assert not torch.allclose(model(**batch).logits, expected)  # the adapter changes the model


def test_likelihood_selection_keeps_the_best_candidate_and_reports_every_score(generator, condition, base, task):
    model, tok = base
    examples = task.test[:6]
    result = generate(generator, condition, GenerateConfig(samples=4, select="likelihood", seed=2, temperature=3.0),
                      model=model, tokenizer=tok, examples=examples)
    assert len(result.scores) == 4 == len(result.candidates)
    pairs = [(e["prompt"], e["completion"]) for e in examples]
    recomputed = [sum(loglik(model, tok, pairs, adapter=c)) / len(pairs) for c in result.candidates]
    assert result.scores == pytest.approx(recomputed, rel=1e-6)
    assert len(set(result.scores)) == 4  # the candidates really differ, so the choice is not vacuous
    assert result.chosen == max(range(4), key=lambda i: result.scores[i])
    assert result.chosen != 0  # with this seed the best is not the first draw: "always the first" would fail here
    assert _same(result.adapter, result.candidates[result.chosen])


def test_likelihood_selection_needs_model_and_examples(generator, condition):
    with pytest.raises(GenerationError, match="likelihood"):
        generate(generator, condition, GenerateConfig(samples=2, select="likelihood"))


def test_a_condition_of_the_wrong_size_is_refused(generator, condition):
    with pytest.raises(GenerationError, match="size"):
        generate(generator, torch.cat([condition, condition]), GenerateConfig())


def test_generator_files_round_trip_gives_identical_generations(generator, condition):
    files = generator.to_files()
    assert set(files) == {"generator_config.json", "generator.safetensors"}
    again = Generator.from_files(files)
    assert again.config == generator.config and again.to_files() == files
    config = GenerateConfig(samples=3, seed=11)
    before, after = generate(generator, condition, config), generate(again, condition, config)
    assert all(_same(a, b) for a, b in zip(before.candidates, after.candidates))


def test_files_that_are_not_a_generator_are_refused(generator):
    files = generator.to_files()
    with pytest.raises(GenerationError):
        Generator.from_files({"generator_config.json": files["generator_config.json"]})
    with pytest.raises(GenerationError):
        Generator.from_files({**files, "generator_config.json": b'{"format": "something-else"}'})
    truncated = generator.model.state_dict()
    truncated.pop("basis")
    from safetensors.torch import save

    with pytest.raises(GenerationError):
        Generator.from_files({**files, "generator.safetensors": save({k: v.contiguous() for k, v in
                                                                      truncated.items()})})
