"""The routed merge (merging.route, merging.routed_inference) on a tiny Llama with two adapters trained on different
tasks: the router sends each task's held-out inputs to its own expert (from examples, and from the adapters alone),
a confidently routed input gets exactly its expert's output, an unsure one the weighted mix of the experts' deltas,
and the version's files hold every expert as a PEFT folder that PeftModel.from_pretrained loads."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lora.bases import load_base, tiny_model
from lora.evaluation import applied, generate
from lora.tasks import load_task
from lora.training import TrainConfig, train_lora
from merging import MergeConfig, MergeError, merge
from merging.route import RoutedMerge, route_merge
from merging.routed_inference import experts_applied, routed_evaluate, routed_generate, routed_weights

SPEC = "tiny:llama?seed=0"
TASKS = ["builtin:caesar_shift?n=64&k=1", "builtin:add_constant?n=64&k=5"]


@pytest.fixture(scope="module")
def world():
    model, tokenizer = load_base(SPEC)
    adapters = [train_lora(model, tokenizer, load_task(t).pairs(), TrainConfig(rank=4, steps=60, lr=1e-2)).adapter
                for t in TASKS]
    examples = [load_task(t).pairs()[:10] for t in TASKS]  # the train split's head
    held_out = [[e["prompt"] for e in load_task(t + "&test=48").test] for t in TASKS]  # never seen by the router
    return model, tokenizer, adapters, examples, held_out


@pytest.fixture(scope="module")
def routed(world):
    model, tokenizer, adapters, examples, _ = world
    return route_merge(adapters, MergeConfig(method="route"), model, tokenizer, examples=examples,
                       sources=["t/caesar@1", "t/add@1"])


@pytest.mark.parametrize("router, calibrate", [("examples", True), ("arrow", True), ("arrow", False)])
def test_the_router_sends_each_tasks_held_out_inputs_to_its_own_expert(world, router, calibrate):
    model, tokenizer, adapters, examples, held_out = world
    _, routed, report = route_merge(adapters, MergeConfig(method="route", router=router), model, tokenizer,
                                    examples=examples if calibrate else None)
    for k, prompts in enumerate(held_out):
        weights = routed.weights(model, tokenizer, prompts)
        assert weights.shape == (len(prompts), 2) and np.allclose(weights.sum(axis=1), 1.0)
        assert np.mean(weights.argmax(axis=1) == k) >= 0.9, (router, k, weights)
    assert report["route"]["router"] == router and report["route"]["calibrated"] == calibrate
    if calibrate:  # the report says how well the router told the examples apart, each held out in turn
        assert min(report["route"]["top1_accuracy_held_out"]) >= 0.9


def test_a_confidently_routed_input_gets_exactly_its_experts_own_output(world, routed):
    model, tokenizer, adapters, _, held_out = world
    _, state, _ = routed
    prompts = held_out[0][:6] + held_out[1][:6]
    completions, weights, timing = routed_generate(model, tokenizer, state, prompts, max_new_tokens=8)
    sure = weights.max(axis=1) == 1.0
    assert sure.sum() >= 10 and timing["routing_s"] > 0 and timing["generate_s"] > 0
    own = [generate(model, tokenizer, prompts, max_new_tokens=8, adapter=a) for a in adapters]
    assert own[0] != own[1]  # the experts answer differently, so routing matters
    for i in np.flatnonzero(sure):
        assert completions[i] == own[int(weights[i].argmax())][i]
    # bit for bit on the logits: the other expert's delta is scaled to exact zeros
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        with experts_applied(model, state) as (peft_model, names), routed_weights(peft_model, names, weights):
            logits = peft_model(**enc).logits
        for k, adapter in enumerate(adapters):
            with applied(model, adapter) as single:
                expected = single(**enc).logits
            rows = sure & (weights.argmax(axis=1) == k)
            assert torch.equal(logits[torch.from_numpy(rows)], expected[torch.from_numpy(rows)])


def test_an_unsure_input_gets_the_weighted_mix_of_the_experts_deltas(world, routed):
    model, tokenizer, adapters, _, held_out = world
    _, state, _ = routed
    enc = tokenizer(held_out[0][:2], return_tensors="pt", padding=True)
    weights = np.array([[0.3, 0.7], [0.6, 0.4]])
    with torch.no_grad():
        with experts_applied(model, state) as (peft_model, names), routed_weights(peft_model, names, weights):
            logits = peft_model(**enc).logits
        for i, w in enumerate(weights):
            mix = merge(adapters, MergeConfig(method="cat", weights=[float(x) for x in w]))  # Σ w_k ΔW_k
            with applied(model, mix) as m:
                torch.testing.assert_close(logits[i], m(**enc).logits[i], atol=1e-5, rtol=1e-5)


def test_routed_evaluate_reports_the_routing_weights_and_the_routers_share_of_the_time(world, routed):
    model, tokenizer, _, _, held_out = world
    _, state, _ = routed
    examples = load_task(TASKS[1]).test[:8]
    scores = routed_evaluate(model, tokenizer, state, examples)
    assert scores["n"] == 8 and len(scores["correct"]) == 8 and len(scores["route_weights"]) == 8
    assert scores["route_top"] == [1] * 8 and scores["route"]["top1_counts"] == [0, 8]
    assert 0 < scores["routing_share"] < 1 and scores["routing_s"] > 0


def test_the_versions_files_round_trip_and_each_expert_loads_with_peft_from_pretrained(world, routed, tmp_path):
    from peft import PeftModel

    model, tokenizer, adapters, _, held_out = world
    primary, state, report = routed
    files = state.to_files()
    assert RoutedMerge.is_routed(files) and report["method"] == "route"
    again = RoutedMerge.from_files(files)
    assert again.sources == ["t/caesar@1", "t/add@1"] and again.kind == "examples"
    np.testing.assert_array_equal(again.weights(model, tokenizer, held_out[1]),
                                  state.weights(model, tokenizer, held_out[1]))
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    enc = tokenizer(held_out[0][:3], return_tensors="pt", padding=True)
    for k, adapter in enumerate(adapters):
        assert again.experts[k].same_delta(adapter, atol=0)
        fresh, _ = tiny_model("llama", seed=0)
        loaded = PeftModel.from_pretrained(fresh, tmp_path / f"route/experts/{k:02d}")
        with torch.no_grad(), applied(model, adapter) as ours:
            torch.testing.assert_close(loaded(**enc).logits, ours(**enc).logits, atol=1e-5, rtol=1e-5)
    # what a plain PEFT loader gets: the experts' deltas at full weight (their cat merge)
    assert primary.same_delta(merge(adapters, MergeConfig(method="cat")), atol=1e-6)


def test_the_examples_router_needs_examples_and_arrow_needs_the_base(world):
    model, tokenizer, adapters, examples, _ = world
    with pytest.raises(MergeError, match="needs a few examples"):
        route_merge(adapters, MergeConfig(method="route"), model, tokenizer)
    with pytest.raises(MergeError, match="needs the base model"):
        route_merge(adapters, MergeConfig(method="route", router="arrow"))
    with pytest.raises(MergeError, match="one set of examples per input"):
        route_merge(adapters, MergeConfig(method="route"), model, tokenizer, examples=examples[:1])
