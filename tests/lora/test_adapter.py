"""The Adapter value must mean exactly what PEFT makes of it: same shapes, same scaling, same outputs."""
import copy
import json
import math

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from lora.adapter import Adapter
from lora.bases import module_shapes, tiny_model

torch.set_num_threads(1)


def random_modules(model, names, ranks, seed=0):
    g = torch.Generator().manual_seed(seed)
    shapes = module_shapes(model)
    out = {}
    for name, r in zip(names, ranks):
        d_in, d_out = shapes[name]
        out[name] = (torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g) * 0.1)
    return out


def outputs_with_delta_by_hand(model, adapter, input_ids):
    """Add each ΔW to a copy of the base weights: the ground truth PEFT's forward must reproduce."""
    patched = copy.deepcopy(model)
    modules = dict(patched.named_modules())
    with torch.no_grad():
        for name in adapter.modules():
            modules[name].weight += adapter.delta_weight(name)
        return patched(input_ids=input_ids).logits


@pytest.fixture(scope="module")
def base():
    return tiny_model("llama", seed=1)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
def test_peft_loads_saved_adapter_and_matches_delta_applied_by_hand(arch, tmp_path):
    model, tok = tiny_model(arch, seed=1)
    names = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj"]
    adapter = Adapter.from_modules(f"tiny:{arch}?seed=1", random_modules(model, names, [4, 4, 4]), r=4, lora_alpha=8)
    adapter.save(tmp_path / "a")
    ids = tok(["hello world"], return_tensors="pt").input_ids
    expected = outputs_with_delta_by_hand(model, adapter, ids)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), tmp_path / "a")
    with torch.no_grad():
        got = peft_model(input_ids=ids).logits
    assert (got - expected).abs().max() < 1e-4, (got - expected).abs().max()
    assert not torch.allclose(got, model(input_ids=ids).logits, atol=1e-3)  # the adapter really changes outputs
    assert Adapter.from_dir(tmp_path / "a").same_delta(adapter)


def test_mixed_ranks_get_rank_pattern_and_load_in_peft(base, tmp_path):
    model, tok = base
    names = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj", "model.layers.0.self_attn.v_proj"]
    adapter = Adapter.from_modules("b", random_modules(model, names, [2, 6, 4]), r=4, lora_alpha=8)
    assert [adapter.rank(n) for n in names] == [2, 6, 4]
    assert adapter.scaling(names[0]) == pytest.approx(8 / 2)
    assert adapter.scaling(names[1]) == pytest.approx(8 / 6)
    assert adapter.config["target_modules"] == ["q_proj", "v_proj"]
    adapter.save(tmp_path / "m")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), tmp_path / "m")
    ids = tok(["abc"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(peft_model(input_ids=ids).logits, outputs_with_delta_by_hand(model, adapter, ids),
                              atol=1e-5)
    assert Adapter.from_peft_model(peft_model).same_delta(adapter)


def test_rslora_scaling_is_alpha_over_sqrt_rank_and_matches_peft(base, tmp_path):
    model, tok = base
    names = ["model.layers.0.self_attn.q_proj"]
    adapter = Adapter.from_modules("b", random_modules(model, names, [4]), r=4, lora_alpha=6, use_rslora=True)
    assert adapter.scaling(names[0]) == pytest.approx(6 / math.sqrt(4))
    adapter.save(tmp_path / "rs")
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), tmp_path / "rs")
    layer = dict(peft_model.named_modules())["base_model.model." + names[0]]
    assert layer.scaling["default"] == pytest.approx(adapter.scaling(names[0]))


def test_alpha_pattern_uses_peft_suffix_matching():
    a = torch.zeros(2, 8)
    b = torch.zeros(8, 2)
    mods = {"model.layers.0.self_attn.q_proj": (a, b), "model.layers.0.self_attn.v_proj": (a, b)}
    adapter = Adapter.from_modules("b", mods, r=2, lora_alpha=4, alpha_pattern={"v_proj": 1})
    assert adapter.alpha("model.layers.0.self_attn.v_proj") == 1
    assert adapter.alpha("model.layers.0.self_attn.q_proj") == 4
    assert adapter.scaling("model.layers.0.self_attn.v_proj") == pytest.approx(0.5)


def test_from_peft_model_snapshot_round_trips_through_bytes(base):
    model, _ = base
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(copy.deepcopy(model), config)
    adapter = Adapter.from_peft_model(peft_model)
    assert len(adapter.modules()) == 4  # q and v in 2 layers
    assert adapter.a("model.layers.0.self_attn.q_proj").shape == (4, 64)
    assert adapter.b("model.layers.0.self_attn.v_proj").shape == (32, 4)
    config_json, weights = adapter.to_bytes()
    again = Adapter.from_bytes(config_json, weights)
    assert again.same_delta(adapter, atol=0)
    assert json.loads(config_json)["peft_type"] == "LORA"
    assert again.config == adapter.config


def test_same_delta_ignores_factorisation_but_sees_a_changed_delta():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, generator=g), torch.randn(7, 3, generator=g)
    m = "model.layers.0.mlp.up_proj"
    one = Adapter.from_modules("b", {m: (a, b)}, r=3, lora_alpha=3)
    rescaled = Adapter.from_modules("b", {m: (a * 2, b / 2)}, r=3, lora_alpha=3)
    other_alpha = Adapter.from_modules("b", {m: (a, b)}, r=3, lora_alpha=6)
    assert one.same_delta(rescaled, atol=1e-5)
    assert not one.same_delta(other_alpha)
    assert one.delta_weight(m).dtype == torch.float32 and one.delta_weight(m).shape == (7, 5)
    extra = "model.layers.1.mlp.up_proj"
    with_zero_module = Adapter.from_modules("b", {m: (a, b), extra: (a, torch.zeros_like(b))}, r=3, lora_alpha=3)
    with_live_module = Adapter.from_modules("b", {m: (a, b), extra: (a, b)}, r=3, lora_alpha=3)
    assert one.same_delta(with_zero_module)  # a module with ΔW = 0 changes nothing
    assert not one.same_delta(with_live_module)


def test_bad_shapes_and_unknown_modules_are_refused():
    with pytest.raises(ValueError, match="not \\(r, in\\)"):
        Adapter.from_modules("b", {"x.q_proj": (torch.zeros(2, 4), torch.zeros(4, 3))}, r=2, lora_alpha=2)
    adapter = Adapter.from_modules("b", {"x.q_proj": (torch.zeros(2, 4), torch.zeros(4, 2))}, r=2, lora_alpha=2)
    with pytest.raises(KeyError, match="x.k_proj"):
        adapter.a("x.k_proj")


def test_mismatches_names_modules_that_do_not_fit_a_base(base):
    model, _ = base
    shapes = module_shapes(model)
    fits = Adapter.from_modules("b", random_modules(model, ["model.layers.0.self_attn.k_proj"], [2]), r=2, lora_alpha=2)
    assert fits.mismatches(shapes) == []
    other, _ = tiny_model("qwen2", hidden_size=32, intermediate_size=64)
    assert "base has (in=32, out=16)" in fits.mismatches(module_shapes(other))[0]
    stray = Adapter.from_modules("b", {"model.layers.9.self_attn.q_proj": (torch.zeros(2, 64), torch.zeros(64, 2))},
                                 r=2, lora_alpha=2)
    assert stray.mismatches(shapes) == ["model.layers.9.self_attn.q_proj: no such linear module in the base"]
