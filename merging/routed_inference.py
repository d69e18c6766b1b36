"""Serving a routed merge: every input gets its expert, or a mix of experts where the router is unsure.

All experts sit in one PEFT wrapper as named adapters, all active; inside `lora.gating.lora_delta_scale` row i of
every forward pass gets Σ_k w_k[i]·ΔW_k x. With the router sure of an input its weights are one-hot, the other
experts' deltas become exact zeros, and the row's output is that expert's own, bit for bit (adding zeros changes
nothing); O3's gate scales its unlearning delta the same way (unlearning/inference.py).

    routed_generate(model, tokenizer, routed, prompts, ...) -> (completions, weights (n, experts), timings)
    routed_evaluate(model, tokenizer, routed, examples) -> exact match, per-item weights and top expert, timings
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from peft import set_peft_model_state_dict

from lora.encoder import keep_rng
from lora.evaluation import generate, item_scores
from lora.gating import lora_delta_scale, routing_summary
from lora.wrapping import wrapped
from merging.route import RoutedMerge

BATCH = 16


def expert_name(k: int) -> str:
    return f"expert{k}"


@contextmanager
def experts_applied(model, routed: RoutedMerge):
    """`with experts_applied(base, routed) as m:` m holds every expert as a named adapter, all active (their deltas
    add up until lora_delta_scale weighs them); afterwards the base is exactly as before."""
    first, *rest = routed.experts
    config = first.lora_config()
    config.inference_mode = True
    with ExitStack() as stack:
        with keep_rng(model):  # PEFT draws random LoRA inits before the stored weights overwrite them
            peft_model = stack.enter_context(wrapped(model, config, first))
            for k, expert in enumerate(rest, 1):
                extra = expert.lora_config()
                extra.inference_mode = True
                peft_model.add_adapter(expert_name(k), extra)
        device = next(model.parameters()).device
        for k, expert in enumerate(rest, 1):
            result = set_peft_model_state_dict(peft_model, {n: t.to(device) for n, t in expert.tensors.items()},
                                               adapter_name=expert_name(k))
            unexpected = [n for n in result.unexpected_keys if "lora_" in n]
            if unexpected:
                raise ValueError(f"expert {k} does not fit this base: {unexpected[:3]}")
        names = ["default"] + [expert_name(k) for k in range(1, len(routed.experts))]
        peft_model.base_model.set_adapter(names)
        peft_model.eval()
        yield peft_model, names


@contextmanager
def routed_weights(peft_model, names: list[str], weights: np.ndarray):
    """Inside the block row i gets Σ_k weights[i, k]·ΔW_k x."""
    with ExitStack() as stack:
        for k, name in enumerate(names):
            stack.enter_context(lora_delta_scale(peft_model, weights[:, k], adapter_names=[name]))
        yield


@torch.no_grad()
def routed_generate(model, tokenizer, routed: RoutedMerge, prompts: list[str], max_new_tokens: int = 32,
                    temperature: float = 0.0, seed: int = 0, stop=("\n",), top_p: float = 1.0,
                    batch_size: int = BATCH) -> tuple[list[str], np.ndarray, dict]:
    """(completions, routing weights (n, experts), {"routing_s", "generate_s"}): the router's time is what routing
    adds to a request (the encoder's one-time load left out); the experts' extra deltas are in generate_s."""
    routed.warm()
    start = time.perf_counter()
    weights = routed.weights(model, tokenizer, prompts)
    routing_s = time.perf_counter() - start
    completions: list[str] = []
    sample = temperature > 0
    start = time.perf_counter()
    with experts_applied(model, routed) as (peft_model, names):
        for first in range(0, len(prompts), batch_size):
            chunk = prompts[first:first + batch_size]
            with routed_weights(peft_model, names, weights[first:first + batch_size]):
                completions.extend(generate(peft_model, tokenizer, chunk, max_new_tokens=max_new_tokens,
                                            do_sample=sample, temperature=temperature if sample else 1.0,
                                            top_p=top_p, stop=stop, seed=seed, batch_size=len(chunk)))
    return completions, weights, {"routing_s": routing_s, "generate_s": time.perf_counter() - start}


def routed_evaluate(model, tokenizer, routed: RoutedMerge, examples: list[dict],
                    max_new_tokens: int | None = None) -> dict:
    """lora.evaluation.evaluate_task for a routed version: greedy routed generation, exact match, plus per item the
    routing weights and the top expert, a summary (lora.gating.routing_summary) and the router's share of the time."""
    if not examples:
        raise ValueError("no examples to evaluate")
    if max_new_tokens is None:  # room for the longest reference, plus a little (as evaluate_task)
        max_new_tokens = max(len(tokenizer(e["completion"], add_special_tokens=False)["input_ids"])
                             for e in examples) + 2
    predictions, weights, timing = routed_generate(model, tokenizer, routed, [e["prompt"] for e in examples],
                                                   max_new_tokens=max_new_tokens)
    correct = item_scores(predictions, [e["completion"] for e in examples])
    total = timing["routing_s"] + timing["generate_s"]
    return {"exact_match": sum(correct) / len(correct), "n": len(examples), "correct": correct,
            "route_weights": [[round(float(w), 4) for w in row] for row in weights],
            "route_top": [int(k) for k in weights.argmax(axis=1)], "route": routing_summary(weights),
            "routing_s": round(timing["routing_s"], 4), "seconds": round(total, 4),
            "routing_share": round(timing["routing_s"] / max(total, 1e-9), 4),
            "items_per_s": round(len(examples) / max(total, 1e-9), 2)}
