"""Fitted merge coefficients (merging.fit_merge) on a tiny Llama with two adapters trained on different tasks: the
fit lowers the examples' loss below the unfitted merge's (measured here independently of the fit's own scorer),
its output is the merge those coefficients name and a plain PEFT adapter, and it keeps to its budget."""
from __future__ import annotations

import pytest
import torch

from lora.bases import load_base, tiny_model
from lora.evaluation import applied, loglik
from lora.tasks import load_task
from lora.training import TrainConfig, train_lora
from merging import MergeConfig, MergeError, fit_merge, merge

SPEC = "tiny:llama?seed=0"
TASKS = ["builtin:caesar_shift?n=64&k=1", "builtin:add_constant?n=64&k=5"]


@pytest.fixture(scope="module")
def world():
    model, tokenizer = load_base(SPEC)
    adapters = [train_lora(model, tokenizer, load_task(t).pairs(), TrainConfig(rank=4, steps=30, lr=1e-2)).adapter
                for t in TASKS]
    examples = [load_task(t).pairs()[:10] for t in TASKS]
    return model, tokenizer, adapters, examples


def example_loss(model, tokenizer, adapter, examples) -> float:
    """Mean over inputs of the per-token completion loss (EOS included), from lora.evaluation.loglik."""
    per_input = []
    for pairs in examples:
        total = -sum(loglik(model, tokenizer, pairs, adapter=adapter, include_eos=True))
        tokens = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) + 1 for _, c in pairs)
        per_input.append(total / tokens)
    return sum(per_input) / len(per_input)


@pytest.mark.parametrize("method, extra", [("linear", {}), ("lego", {"rank": 4}),
                                           ("lego", {"rank": 4, "fit_granularity": "cluster"})])
def test_a_fitted_merge_has_a_lower_loss_on_the_fit_examples_than_the_unfitted_one(world, method, extra):
    model, tokenizer, adapters, examples = world
    config = MergeConfig(method=method, **extra)
    fitted, report = fit_merge(adapters, config, model, tokenizer, examples)
    before = example_loss(model, tokenizer, merge(adapters, config), examples)
    after = example_loss(model, tokenizer, fitted, examples)
    assert after < before - 0.01, (before, after)
    fit = report["fit"]
    assert fit["loss_unfitted"]["mean"] == pytest.approx(before, rel=1e-3)
    assert fit["loss_fitted"]["mean"] == pytest.approx(after, rel=1e-3)


def test_the_report_holds_the_coefficients_the_curve_and_the_time_and_the_coefficients_are_the_merge(world):
    model, tokenizer, adapters, examples = world
    config = MergeConfig(method="linear", fit_budget=25, seed=3)
    fitted, report = fit_merge(adapters, config, model, tokenizer, examples)
    fit = report["fit"]
    assert fit["start"] == [1.0, 1.0] and len(fit["coefficients"]) == 2 and fit["coefficients"] != fit["start"]
    assert report["config"]["weights"] == fit["coefficients"]
    assert fit["evaluations"] == len(fit["curve"]) == len(fit["best"]) == 25 and fit["time_s"] > 0
    assert fit["curve"][0] == fit["loss_unfitted"]["mean"]  # the unfitted start is evaluated first, no L1 there
    assert all(b <= a for a, b in zip(fit["best"], fit["best"][1:])) and fit["best"][-1] == min(fit["curve"])
    assert fit["examples"] == [10, 10]
    # the fitted adapter is exactly the merge with the fitted coefficients as weights
    assert fitted.same_delta(merge(adapters, MergeConfig(method="linear", weights=fit["coefficients"])), atol=1e-6)
    again, _ = fit_merge(adapters, config, model, tokenizer, examples)
    assert again.same_delta(fitted, atol=0)  # seeded


def test_a_fitted_merge_loads_with_peft_from_pretrained_and_computes_the_same_outputs(world, tmp_path):
    from peft import PeftModel

    model, tokenizer, adapters, examples = world
    fitted, _ = fit_merge(adapters, MergeConfig(method="lego", rank=4, fit_budget=10), model, tokenizer, examples)
    fitted.save(tmp_path)
    fresh, _ = tiny_model("llama", seed=0)
    loaded = PeftModel.from_pretrained(fresh, tmp_path)
    ids = tokenizer(["abc+1=", "xyz"], return_tensors="pt", padding=True)
    with torch.no_grad(), applied(model, fitted) as ours:
        expected = ours(**ids).logits
    torch.testing.assert_close(loaded(**ids).logits, expected, atol=1e-5, rtol=1e-5)


def test_cluster_coefficients_scale_the_unfitted_lego_units(world):
    model, tokenizer, adapters, examples = world
    config = MergeConfig(method="lego", rank=4, fit_granularity="cluster", fit_budget=12)
    fitted, report = fit_merge(adapters, config, model, tokenizer, examples)
    unfitted = merge(adapters, config)
    coefficients = report["fit"]["coefficients"]
    assert set(coefficients) == set(unfitted.modules())
    for m, scales in coefficients.items():
        assert len(scales) == 4
        torch.testing.assert_close(fitted.a(m), unfitted.a(m))
        torch.testing.assert_close(fitted.b(m), unfitted.b(m) * torch.tensor(scales))


def test_a_budget_of_one_returns_the_unfitted_merge(world):
    model, tokenizer, adapters, examples = world
    config = MergeConfig(method="lego", rank=4, fit_budget=1)
    fitted, report = fit_merge(adapters, config, model, tokenizer, examples)
    assert report["fit"]["evaluations"] == 1 and fitted.same_delta(merge(adapters, config), atol=0)


@pytest.mark.parametrize("examples, config, message", [
    ([[("a", "b")]], MergeConfig(method="linear"), "one set of examples per input"),
    ([[("a", "b")], []], MergeConfig(method="linear"), "empty"),
    ([[("a", "b")]] * 2, MergeConfig(method="linear", weights=[1.0, 5.0]), "outside"),
])
def test_fit_refuses_what_it_cannot_fit(world, examples, config, message):
    model, tokenizer, adapters, _ = world
    with pytest.raises(MergeError, match=message):
        fit_merge(adapters, config, model, tokenizer, examples)
