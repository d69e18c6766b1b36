"""The "subspace fit" baseline for ICM-LoRA: the seen members' adapters mixed with coefficients fitted on
a new task's examples by a few steps of gradient descent on their completion loss.

    subspace_fit(adapters, model, tokenizer, examples, steps=20, lr=0.05) -> (Adapter, report)

It answers the question a generator has to beat: given the same examples, is a learned decoder better than simply
searching the span of what we already have? The mix is taken over the flattened LoRA factors, θ(w) = Σ w_i θ_i
(every A and every B tensor mixed with the same weights), so the result is a plain PEFT adapter of the family's
shape, the same kind of point as a generated one (the basis generator decodes into this span too). w starts at the
plain average (1/n each) and Adam follows the exact gradient of the mean completion-token loss with respect to w
(torch.func.functional_call runs the PEFT-wrapped base with the mixed tensors, the base stays frozen). The best w
seen is returned, so the fit never ends above the plain average on the examples.
"""
from __future__ import annotations

import time

import torch
from torch.func import functional_call

from generation.errors import GenerationError
from generation.family import check_family
from lora import Adapter
from lora.training import collate, completion_loss_sum, encode_pair
from lora.wrapping import wrapped

MAX_LEN, BATCH = 256, 16


def _parameter_names(peft_model, keys: list[str]) -> dict[str, str]:
    """adapter_model.safetensors key -> the wrapped model's parameter name (PEFT adds the adapter name, "default")."""
    names = {name.replace(".default", ""): name for name, _ in peft_model.named_parameters() if "lora_" in name}
    missing = [k for k in keys if k not in names]
    if missing:
        raise GenerationError(f"the adapters do not fit this base: no module for {missing[:3]}")
    return {k: names[k] for k in keys}


def _mixed(stacked: dict[str, torch.Tensor], weights: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: torch.tensordot(weights, v, dims=1) for k, v in stacked.items()}


def subspace_fit(adapters: list[Adapter], model, tokenizer, examples, steps: int = 20,
                 lr: float = 0.05) -> tuple[Adapter, dict]:
    """Mix `adapters` (one family) with weights fitted on `examples` ((prompt, completion) pairs or
    {"prompt", "completion"} dicts); returns the mixed adapter and {"weights", "loss_average", "loss", "losses",
    "steps", "seconds"}: the plain average's loss, the returned mix's loss, the loss at every step."""
    start = time.perf_counter()
    if not adapters:
        raise GenerationError("subspace_fit needs at least one adapter")
    if not isinstance(steps, int) or steps < 0 or not lr > 0:
        raise GenerationError(f"steps must be an integer >= 0 and lr > 0, got {steps!r}, {lr!r}")
    problems = check_family(adapters)
    if problems:
        raise GenerationError("the adapters are not one family: " + " | ".join(problems))
    pairs = [(e["prompt"], e["completion"]) if isinstance(e, dict) else tuple(e) for e in examples or []]
    if not pairs:
        raise GenerationError("subspace_fit needs some examples to fit on")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [encode_pair(tokenizer, p, c, MAX_LEN) for p, c in pairs]
    batches = [collate(encoded[i:i + BATCH], pad_id) for i in range(0, len(encoded), BATCH)]
    device = next(model.parameters()).device
    stacked = {k: torch.stack([a.tensors[k].detach().float() for a in adapters]).to(device)
               for k in adapters[0].tensors}
    weights = torch.full((len(adapters),), 1.0 / len(adapters), device=device, requires_grad=True)
    optimizer = torch.optim.Adam([weights], lr=lr)
    losses = []
    best = (float("inf"), weights.detach().clone())
    with wrapped(model, adapters[0].lora_config(), adapters[0]) as peft_model:
        peft_model.eval()  # no dropout: the loss is a deterministic function of w
        names = _parameter_names(peft_model, list(stacked))
        for step in range(steps + 1):
            total, count = 0.0, 0
            optimizer.zero_grad(set_to_none=True)
            mixed = _mixed(stacked, weights)
            for batch in batches:
                batch = {k: v.to(device) for k, v in batch.items()}
                loss_sum, n = completion_loss_sum(
                    lambda **kw: functional_call(peft_model, {names[k]: v for k, v in mixed.items()}, kwargs=kw),
                    batch)
                total, count = total + loss_sum, count + n
            loss = total / max(count, 1)
            losses.append(loss.item())
            if losses[-1] < best[0]:
                best = (losses[-1], weights.detach().clone())
            if step < steps:  # the last pass only measures the last update
                loss.backward()
                optimizer.step()
    fitted = best[1].cpu()
    tensors = {k: torch.tensordot(fitted, v.cpu(), dims=1).to(adapters[0].tensors[k].dtype)
               for k, v in stacked.items()}
    report = {"weights": [float(w) for w in fitted], "loss_average": losses[0], "loss": best[0], "losses": losses,
              "steps": steps, "seconds": time.perf_counter() - start}
    return Adapter(config=dict(adapters[0].config), tensors=tensors), report
