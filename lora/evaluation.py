"""Running a base with or without an adapter: generation with stop rules, log-likelihood, yes/no scoring.

These are the primitives the methods are built from: Trans-LoRA samples synthetic inputs (generate with
do_sample), filters them with a yes/no discriminator (yes_no_prob) and labels them greedily with the source
adapter; O3 and the `evaluate` job score exact match; ICM-LoRA reads hidden states (hidden_state_mean).
All functions take the base model and an optional Adapter, applied only for the duration of the call.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from lora.adapter import Adapter
from lora.training import IGNORE, collate, encode_pair, labelled_logits
from lora.wrapping import exclusive, wrapped

BATCH = 16


@contextmanager
def applied(model, adapter: Adapter):
    """`with applied(base, adapter) as m:` m computes base + adapter; afterwards the base is exactly as before."""
    config = adapter.lora_config()
    config.inference_mode = True
    with wrapped(model, config, adapter) as peft_model:
        peft_model.eval()
        yield peft_model


def _maybe_applied(model, adapter: Adapter | None):
    return applied(model, adapter) if adapter is not None else exclusive(model)


def _device(model):
    return next(model.parameters()).device


def cut_at_stop(text: str, stop) -> str:
    """The text before the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut]


class _StopOnStrings(StoppingCriteria):
    """Ends each row as soon as its continuation contains one of that row's stop strings (rows finish
    independently). Only the last few tokens of a row are decoded per step: a stop string of L characters ends
    within the last 4·L + 4 tokens (a token decodes to at least one character, or to a byte of one), so the check
    costs the same at token 5 and token 500."""

    def __init__(self, tokenizer, prompt_len: int, stops: list[tuple[str, ...]]):
        self.tokenizer, self.prompt_len = tokenizer, prompt_len
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.window = 4 * max((len(s) for row in self.stops for s in row), default=0) + 4

    def __call__(self, input_ids, scores, **kwargs):
        start = max(self.prompt_len, input_ids.shape[1] - self.window)
        texts = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in row) for t, row in zip(texts, self.stops)], device=input_ids.device)


def _per_row_stops(stop, count: int) -> list[tuple[str, ...]]:
    """`stop` is either stop strings for every row ("\n" or ("\n", ".")) or one sequence of them per prompt."""
    if isinstance(stop, str):
        return [(stop,)] * count
    stop = list(stop or ())
    if all(isinstance(s, str) for s in stop):
        return [tuple(stop)] * count
    if len(stop) != count:
        raise ValueError(f"per-row stop strings: {len(stop)} rows of them for {count} prompts")
    return [(row,) if isinstance(row, str) else tuple(row) for row in stop]


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 32, do_sample: bool = False,
             temperature: float = 1.0, top_p: float = 1.0, stop=("\n",), seed: int = 0,
             adapter: Adapter | None = None, batch_size: int = BATCH) -> list[str]:
    """Continuations of each prompt (the prompt itself not included), cut before the first stop string and at EOS.

    `stop` holds stop strings for every row, or one sequence of them per prompt. Batched with left padding; greedy
    decoding batches prompts of similar length together (less padding, same outputs: a row's greedy continuation
    does not depend on its batch) and returns them in the caller's order. Sampling keeps the caller's order in its
    batches, so a seed gives the same samples as before, and does not disturb the caller's random stream."""
    device = _device(model)
    tokenizer.padding_side = "left"
    stops = _per_row_stops(stop, len(prompts))
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=do_sample,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                              **({"temperature": temperature, "top_p": top_p} if do_sample else {}))
    order = list(range(len(prompts)))
    if not do_sample:
        lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=True)["input_ids"]] if prompts \
            else []
        order.sort(key=lambda i: lengths[i])
    outputs: list[str | None] = [None] * len(prompts)
    with _maybe_applied(model, adapter) as m, \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            rows = sorted(order[start:start + batch_size])  # a batch keeps the caller's order: one batch is the
            # prompts as given, so a caller that scales rows of the batch (O3's gate) sees its own row order
            enc = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True).to(device)
            width = enc["input_ids"].shape[1]
            row_stops = [stops[i] for i in rows]
            criteria = StoppingCriteriaList([_StopOnStrings(tokenizer, width, row_stops)]) \
                if any(row_stops) else None
            out = m.generate(**enc, generation_config=config, stopping_criteria=criteria)
            texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
            for i, text, row_stop in zip(rows, texts, row_stops):
                outputs[i] = cut_at_stop(text, row_stop)
    return outputs


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Fraction of predictions equal to their reference after stripping surrounding whitespace."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not references:
        return 0.0
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references)) / len(references)


@torch.no_grad()
def loglik(model, tokenizer, pairs: list[tuple[str, str]], adapter: Adapter | None = None,
           include_eos: bool = False, batch_size: int = BATCH, max_len: int = 1024) -> list[float]:
    """Sum of log p(completion tokens | prompt) per pair (natural log); EOS counted only when include_eos."""
    device = _device(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scores: list[float] = []
    with _maybe_applied(model, adapter) as m:
        for start in range(0, len(pairs), batch_size):
            examples = []
            for prompt, completion in pairs[start:start + batch_size]:
                ids, labels = encode_pair(tokenizer, prompt, completion, max_len)
                if not include_eos and tokenizer.eos_token_id is not None:
                    labels[-1] = IGNORE
                examples.append((ids, labels))
            batch = {k: v.to(device) for k, v in collate(examples, pad_id).items()}
            logits, targets = labelled_logits(m, batch)
            logits = logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            scores.extend((picked * (targets != IGNORE)).sum(dim=1).tolist())
    return scores


def yes_no_prob(model, tokenizer, prompts: list[str], adapter: Adapter | None = None,
                yes: str = "yes", no: str = "no") -> torch.Tensor:
    """p(yes) / (p(yes) + p(no)) per prompt, from the log-likelihood of each full answer string.

    Scoring whole answers (not a first token) works for any tokenizer and matches how train_lora trains a
    yes/no classifier (the answer as the completion)."""
    with _maybe_applied(model, adapter) as m:
        ll_yes = loglik(m, tokenizer, [(p, yes) for p in prompts])
        ll_no = loglik(m, tokenizer, [(p, no) for p in prompts])
    return torch.sigmoid(torch.tensor(ll_yes) - torch.tensor(ll_no))


def item_scores(predictions: list[str], references: list[str]) -> list[int]:
    """1 where a prediction equals its reference after stripping surrounding whitespace, else 0 (exact_match's
    items: what a paired comparison of two systems on the same items needs)."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    return [int(p.strip() == r.strip()) for p, r in zip(predictions, references)]


def evaluate_task(model, tokenizer, adapter: Adapter | None, examples: list[dict],
                  max_new_tokens: int | None = None, batch_size: int = BATCH) -> dict:
    """Greedy generation on {"prompt", "completion"} examples, scored by exact match.

    Returns {"exact_match", "n", "correct" (per item, 0/1), "seconds", "items_per_s"} (generation time only)."""
    if not examples:
        raise ValueError("no examples to evaluate")
    if max_new_tokens is None:  # room for the longest reference, plus a little
        max_new_tokens = max(len(tokenizer(e["completion"], add_special_tokens=False)["input_ids"])
                             for e in examples) + 2
    start = time.perf_counter()
    predictions = generate(model, tokenizer, [e["prompt"] for e in examples], max_new_tokens=max_new_tokens,
                           adapter=adapter, batch_size=batch_size)
    seconds = time.perf_counter() - start
    correct = item_scores(predictions, [e["completion"] for e in examples])
    return {"exact_match": sum(correct) / len(correct), "n": len(examples), "correct": correct,
            "seconds": round(seconds, 4), "items_per_s": round(len(examples) / max(seconds, 1e-9), 2)}


@torch.no_grad()
def hidden_state_mean(model, tokenizer, texts: list[str], adapter: Adapter | None = None,
                      layer: int = -1) -> torch.Tensor:
    """Mean over texts of the hidden state at the last token of `layer` (ICM-LoRA's task vector), float32."""
    device = _device(model)
    tokenizer.padding_side = "left"  # the last position is then the last real token of every row
    rows = []
    with _maybe_applied(model, adapter) as m:
        for start in range(0, len(texts), BATCH):
            enc = tokenizer(texts[start:start + BATCH], return_tensors="pt", padding=True).to(device)
            out = m(**enc, output_hidden_states=True)
            rows.append(out.hidden_states[layer][:, -1].float().cpu())
    return torch.cat(rows).mean(dim=0)
