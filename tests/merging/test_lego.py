"""The properties LoRA-LEGO must have (methods.md): it generalises cat, reproduces a single adapter, ignores the
order of an adapter's ranks, and its reweighting does what it claims."""
from __future__ import annotations

import math

import torch

from lora import Adapter
from merging import MergeConfig, merge, merge_with_report
from merge_inputs import random_adapter

NO_REWEIGHT = dict(parameter_reweighting=False, output_reweighting=False)


def test_lego_with_k_equal_total_rank_and_no_reweighting_equals_cat():
    inputs = [random_adapter(1, r=4, alpha=8), random_adapter(2, r=2, alpha=2), random_adapter(3, r=6, alpha=3)]
    weights = [1.0, 0.5, -0.7]
    lego = merge(inputs, MergeConfig(method="lego", rank=12, weights=weights, **NO_REWEIGHT))
    cat = merge(inputs, MergeConfig(method="cat", weights=weights))
    assert lego.same_delta(cat, atol=1e-5)
    expected = {m: sum(w * ad.delta_weight(m) for w, ad in zip(weights, inputs)) for m in inputs[0].modules()}
    for m, delta in expected.items():
        torch.testing.assert_close(lego.delta_weight(m), delta, atol=1e-5, rtol=0)


def test_lego_of_one_adapter_with_k_equal_rank_reproduces_it_even_with_reweighting():
    single = random_adapter(5, r=4, alpha=16)
    merged, report = merge_with_report([single], MergeConfig(method="lego"))
    assert report["k"] == 4 and merged.rank(single.modules()[0]) == 4
    assert merged.same_delta(single, atol=1e-5)


def _permuted(adapter: Adapter, seed: int) -> Adapter:
    gen = torch.Generator().manual_seed(seed)
    mods = {}
    for m in adapter.modules():
        perm = torch.randperm(adapter.rank(m), generator=gen)
        mods[m] = (adapter.a(m)[perm], adapter.b(m)[:, perm])
    return Adapter.from_modules(adapter.base_model, mods, r=adapter.config["r"], lora_alpha=adapter.config["lora_alpha"])


def test_permuting_an_inputs_ranks_leaves_lego_unchanged_for_a_fixed_seed():
    inputs = [random_adapter(s, r=8) for s in (11, 12, 13)]
    config = MergeConfig(method="lego", rank=8, seed=3)
    reference = merge(inputs, config)
    shuffled = merge([_permuted(inputs[0], 1), inputs[1], _permuted(inputs[2], 2)], config)
    assert shuffled.same_delta(reference, atol=1e-5)
    # the seed matters, so the check above is not vacuous
    assert not merge(inputs, MergeConfig(method="lego", rank=8, seed=4)).same_delta(reference, atol=1e-5)


def test_lego_groups_units_that_share_a_direction():
    """Two adapters built from the same 4 directions (scaled) merge into those 4 clusters, each of size 2."""
    base = random_adapter(21, r=4, alpha=4)
    m = base.modules()[0]
    scaled = Adapter.from_modules(base.base_model, {m: (base.a(m) * 2, base.b(m) * 3)}, r=4, lora_alpha=4)
    single = Adapter.from_modules(base.base_model, {m: (base.a(m), base.b(m))}, r=4, lora_alpha=4)
    merged, report = merge_with_report([single, scaled], MergeConfig(method="lego", rank=4))
    assert report["modules"][m]["cluster_sizes"] == [2, 2, 2, 2]
    # members are parallel, so each centroid keeps the direction and has the members' mean norms:
    # mean |a| = 1.5 |a| and mean |b| = 2 |b|, so ΔW = 3 · single's ΔW (output factor √(4/4) = 1)
    torch.testing.assert_close(merged.delta_weight(m), 3 * single.delta_weight(m), atol=1e-4, rtol=1e-4)
    plain = merge([single, scaled], MergeConfig(method="lego", rank=4, **NO_REWEIGHT))
    # without reweighting the centroid is the plain mean, here the same (1.5 a)(2 b)
    torch.testing.assert_close(plain.delta_weight(m), 3 * single.delta_weight(m), atol=1e-4, rtol=1e-4)


def test_parameter_reweighting_restores_norms_lost_by_averaging_and_output_reweighting_scales_by_sqrt_r_over_k():
    inputs = [random_adapter(s, r=4, modules=("model.layers.0.self_attn.q_proj",)) for s in (31, 32, 33, 34)]
    m = inputs[0].modules()[0]
    plain = merge(inputs, MergeConfig(method="lego", rank=2, **NO_REWEIGHT))
    params = merge(inputs, MergeConfig(method="lego", rank=2, output_reweighting=False))
    both = merge(inputs, MergeConfig(method="lego", rank=2))
    # random directions average out: centroids are shorter than their members, reweighting lengthens them
    assert (params.a(m).norm(dim=1) > plain.a(m).norm(dim=1)).all()
    assert (params.b(m).norm(dim=0) > plain.b(m).norm(dim=0)).all()
    torch.testing.assert_close(both.delta_weight(m), math.sqrt(4 / 2) * params.delta_weight(m), atol=1e-5, rtol=1e-5)


def test_lego_output_is_rank_k_with_scaling_one_and_mixed_input_ranks():
    inputs = [random_adapter(41, r=2, alpha=4), random_adapter(42, r=8, alpha=8)]
    merged, report = merge_with_report(inputs, MergeConfig(method="lego"))
    assert report["k"] == 8 and report["input_rank"] == 8
    for m in merged.modules():
        assert merged.a(m).shape[0] == 8 and merged.scaling(m) == 1.0
        assert sum(report["modules"][m]["cluster_sizes"]) == 10


def test_lego_survives_a_save_and_peft_reload(tmp_path):
    """The merged adapter is a valid PEFT adapter: PeftModel loads it and applies the same ΔW."""
    from peft import PeftModel

    from merge_inputs import peft_with_adapters, tiny_llama

    model = peft_with_adapters()
    inputs = [Adapter.from_peft_model(model, n) for n in ("x", "y")]
    merged = merge(inputs, MergeConfig(method="lego", rank=3))
    merged.save(tmp_path / "lego")
    loaded = PeftModel.from_pretrained(tiny_llama(), tmp_path / "lego")
    assert Adapter.from_peft_model(loaded).same_delta(merged, atol=1e-6)


def test_merge_reports_progress_per_module_and_what_it_did():
    inputs = [random_adapter(51), random_adapter(52)]
    calls = []
    merged, report = merge_with_report(inputs, MergeConfig(method="lego", rank=3),
                                       progress=lambda stage, done, total, m=None: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    assert report["method"] == "lego" and report["k"] == 3 and report["n_inputs"] == 2 and report["n_modules"] == 2
    assert report["output_rank"] == 3 and report["time_s"] >= 0
    assert all(sum(info["cluster_sizes"]) == 8 for info in report["modules"].values())
