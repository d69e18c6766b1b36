"""Test inputs for merging: a tiny random Llama with three LoRA adapters loaded into one PeftModel, so baselines can be checked against
PEFT's own add_weighted_adapter. B is random (PEFT initialises it to 0, which would make every merge trivially 0)."""
from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from lora import Adapter

BASE = "tiny-llama-test"
NAMES = ["x", "y", "z"]  # not letters of "lora_": PEFT warns about those


def tiny_llama():
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=64, max_position_embeddings=64)
    model = LlamaForCausalLM(config)
    model.name_or_path = BASE  # PEFT copies this into base_model_name_or_path
    return model


def peft_with_adapters(ranks=(4, 4, 4), alphas=(8, 4, 16), rank_patterns=None):
    """PeftModel holding adapters x, y, z (q_proj and v_proj) with random nonzero A and B."""
    rank_patterns = rank_patterns or [{}] * len(ranks)
    model = None
    for name, r, alpha, pattern in zip(NAMES, ranks, alphas, rank_patterns):
        cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], rank_pattern=pattern,
                         base_model_name_or_path=BASE, task_type="CAUSAL_LM")
        if model is None:
            model = get_peft_model(tiny_llama(), cfg, adapter_name=name)
        else:
            model.add_adapter(name, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def random_adapter(seed, r=4, alpha=8.0, modules=("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.up_proj"),
                   shape=(32, 32), base=BASE):
    gen = torch.Generator().manual_seed(seed)
    out, inp = shape
    mods = {m: (torch.randn(r, inp, generator=gen), torch.randn(out, r, generator=gen)) for m in modules}
    return Adapter.from_modules(base, mods, r=r, lora_alpha=alpha)
