"""How close a generator comes to each member it learned from: the numbers the generator's page shows per member.

For member i, the generator decodes its own condition at the latent mean (z = 0: the generator's typical answer for
that task, no sampling luck) and the result is compared with the member's trained adapter two ways:

- weight_error: ||ΔW_generated - ΔW_trained|| / ||ΔW_trained|| over all modules (Frobenius, ΔW = s·B·A), so 0 is
  the trained adapter exactly and 1 is as far as no adapter at all;
- recovered (when examples are given): the share of the trained adapter's log-likelihood gain over the base that the
  generated one keeps on the member's examples, (ll_generated - ll_base) / (ll_trained - ll_base), per token; 1 is
  as good as trained, 0 no better than the base. It is what best-of-N selection ranks candidates by, on the
  member's own data.

These are seen members: a generator that cannot give back what it was trained on will not generalise to an unseen
one (the quality protocol's held-out table measures that with exact match).
"""
from __future__ import annotations

import torch

from generation.generator import Generator
from lora import Adapter
from lora.evaluation import loglik


def weight_error(generated: Adapter, trained: Adapter) -> float:
    num = den = 0.0
    for module in trained.modules():
        target = trained.delta_weight(module)
        got = generated.delta_weight(module) if module in generated.modules() else torch.zeros_like(target)
        num += float((got - target).pow(2).sum())
        den += float(target.pow(2).sum())
    return (num / den) ** 0.5 if den > 0 else float("nan")


def fidelity(generated: Adapter, trained: Adapter, model=None, tokenizer=None,
             pairs: list[tuple[str, str]] | None = None) -> dict:
    """{"weight_error"} and, with a model, its tokenizer and (prompt, completion) pairs, {"loglik_generated",
    "loglik_trained", "loglik_base", "recovered"} (mean log-likelihood per completion token; module doc)."""
    out = {"weight_error": weight_error(generated, trained)}
    if model is None or not pairs:
        return out
    tokens = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for _, c in pairs) or 1
    ll = {name: sum(loglik(model, tokenizer, pairs, adapter=adapter)) / tokens
          for name, adapter in (("generated", generated), ("trained", trained), ("base", None))}
    gain = ll["trained"] - ll["base"]
    out.update({f"loglik_{k}": v for k, v in ll.items()})
    out["recovered"] = (ll["generated"] - ll["base"]) / gain if gain > 0 else float("nan")
    return out


def member_fidelity(generator: Generator, name: str, condition: torch.Tensor, trained: Adapter, model=None,
                    tokenizer=None, pairs: list[tuple[str, str]] | None = None) -> dict:
    """{"member": name, ...fidelity} of the generator's latent-mean decode for this member's condition."""
    (generated,) = generator.decode(torch.zeros(1, generator.latent), condition)
    return {"member": name, **fidelity(generated, trained, model, tokenizer, pairs)}
