"""Gated inference with an O3 state (methods.md O3 step 4): every adapted layer computes

    h = W·x + ΔW_task·x + w(x)·ΔW_unlearn·x

with w(x) the max over the state's detectors of their gates (the calibrated gate of lora/gating.py by default, the
paper's soft weight of unlearning/gate.py for the ablation and for states made before it), one weight per input.

The base is wrapped with two PEFT LoRA adapters, the task adapter ("default") and the unlearning LoRA ("unlearn"),
both active; PEFT adds their deltas one after the other, and a forward hook on each "unlearn" lora_B scales that
delta row by row (lora.gating.lora_delta_scale, restricted to that adapter). Hence:
  - gate = 0: the unlearning delta is multiplied by 0 and adds exactly nothing, so logits equal the task adapter's
    bit for bit;
  - gate = "off" (no hook, w = 1): the same function as the version's primary (concatenated) adapter, up to float
    rounding;
  - gate = "auto": the detectors decide per input; gate = a number forces that weight on every input. With the
    calibrated gate an input far from every forget set gets exactly 0, so exactly the task adapter.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from peft import set_peft_model_state_dict

from lora.evaluation import generate, item_scores
from lora.gating import gate_summary, lora_delta_scale
from lora.wrapping import wrapped
from lora.encoder import keep_rng
from unlearning.state import O3State

TASK = "default"
UNLEARN = "unlearn"
BATCH = 16
DETECTOR_GATES = ("auto", "calibrated", "paper")


@contextmanager
def o3_applied(model, state: O3State):
    """`with o3_applied(base, state) as m:` m computes base + task + unlearning LoRA (both PEFT adapters active);
    afterwards the base is exactly as before."""
    task_config = state.task.lora_config()
    task_config.inference_mode = True
    unlearn_config = state.unlearn.lora_config()
    unlearn_config.inference_mode = True
    with ExitStack() as stack:
        with keep_rng(model):  # PEFT draws random LoRA inits before the stored weights overwrite them
            peft_model = stack.enter_context(wrapped(model, task_config, state.task))
            peft_model.add_adapter(UNLEARN, unlearn_config)
        device = next(model.parameters()).device
        result = set_peft_model_state_dict(peft_model, {k: v.to(device) for k, v in state.unlearn.tensors.items()},
                                           adapter_name=UNLEARN)
        unexpected = [k for k in result.unexpected_keys if "lora_" in k]
        if unexpected:
            raise ValueError(f"unlearning LoRA does not fit this base: {unexpected[:3]}")
        peft_model.base_model.set_adapter([TASK, UNLEARN])
        peft_model.eval()
        yield peft_model


def unlearn_delta_scale(peft_model, weights):
    """Inside the block row i of every forward pass gets w[i]·ΔW_unlearn·x (the task delta is untouched)."""
    return lora_delta_scale(peft_model, weights, adapter_names=[UNLEARN])


def detector_weights(state: O3State, prompts: list[str], gate: str = "auto") -> np.ndarray:
    """(n_detectors, n_prompts): each request's detector's weight for each prompt, under the gate it was made with
    ("auto") or under "calibrated" / "paper" for every detector (the ablation)."""
    if not state.detectors:
        raise ValueError("the O3 state has no detectors")
    kind = None if gate == "auto" else gate
    return np.stack([d.weights_from_scores(d.scores(prompts), kind) for d in state.detectors])


def gate_weights(state: O3State, prompts: list[str], gate="auto") -> np.ndarray:
    """w(x) per prompt: "auto" = max over the detectors of each one's own gate, "calibrated" / "paper" = max under
    that gate for every detector, "off" = 1, a number = that number for every prompt."""
    if gate in DETECTOR_GATES:
        return detector_weights(state, prompts, gate).max(axis=0)
    if gate == "off":
        return np.ones(len(prompts))
    if isinstance(gate, (int, float)) and not isinstance(gate, bool) and 0.0 <= float(gate) <= 1.0:
        return np.full(len(prompts), float(gate))
    raise ValueError(f"gate must be one of {list(DETECTOR_GATES)}, 'off' or a number in [0, 1], got {gate!r}")


@torch.no_grad()
def gated_generate(model, tokenizer, state: O3State, prompts: list[str], gate="auto", max_new_tokens: int = 32,
                   temperature: float = 0.0, seed: int = 0, stop=("\n",), top_p: float = 1.0,
                   batch_size: int = BATCH) -> tuple[list[str], list[float]]:
    """(completions, weights): generation from base + task + w(x)·unlearning LoRA, with w per prompt from `gate`.

    temperature 0 = greedy; otherwise sampling, seeded per batch (the caller's random stream is not disturbed).
    Completions are cut like lora.evaluation.generate (before the first stop string, at EOS)."""
    weights = gate_weights(state, prompts, gate)
    completions: list[str] = []
    sample = temperature > 0
    with o3_applied(model, state) as peft_model:
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start:start + batch_size]
            kwargs = dict(max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature if sample else 1.0,
                          top_p=top_p, stop=stop, seed=seed, batch_size=len(chunk))
            if gate == "off":
                completions.extend(generate(peft_model, tokenizer, chunk, **kwargs))
            else:
                with unlearn_delta_scale(peft_model, weights[start:start + batch_size]):
                    completions.extend(generate(peft_model, tokenizer, chunk, **kwargs))
    return completions, [float(w) for w in weights]


def gated_evaluate(model, tokenizer, state: O3State, examples: list[dict], gate="auto",
                   max_new_tokens: int | None = None) -> dict:
    """lora.evaluation.evaluate_task for an O3 version: greedy gated generation on {"prompt", "completion"}
    examples, exact match; also reports how much of the unlearning LoRA the examples got: the mean gate weight and
    its distribution (lora.gating.gate_summary: quantiles, fractions open ≥ 0.9 and closed ≤ 0.05)."""
    if not examples:
        raise ValueError("no examples to evaluate")
    if max_new_tokens is None:  # room for the longest reference, plus a little (as evaluate_task)
        max_new_tokens = max(len(tokenizer(e["completion"], add_special_tokens=False)["input_ids"])
                             for e in examples) + 2
    predictions, weights = gated_generate(model, tokenizer, state, [e["prompt"] for e in examples], gate=gate,
                                          max_new_tokens=max_new_tokens)
    correct = item_scores(predictions, [e["completion"] for e in examples])
    return {"exact_match": sum(correct) / len(correct), "n": len(examples), "correct": correct,
            "gate_mean": float(np.mean(weights)), "gate": gate_summary(weights), "gate_weights": [round(float(w), 4) for w in weights]}
