"""generate: a trained generator and a task's condition in, a PEFT adapter on the generator's base out.

z ~ N(0, I) (times GenerateConfig.temperature), decoded with the condition, cropped, denormalised and stamped with
the family's adapter config (methods.md ICM-LoRA step 5). With samples > 1 and select="likelihood" (our addition)
every candidate is scored by its mean log-likelihood on a few given examples with the base model, and the best one
is kept; every candidate's score is reported, so a user can see how much the choice mattered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from generation.config import GenerateConfig
from generation.errors import GenerationError
from generation.generator import Generator
from lora import Adapter
from lora.bases import module_shapes
from lora.evaluation import loglik
from lora.progress import Progress


@dataclass
class GenerateResult:
    adapter: Adapter  # the chosen candidate
    chosen: int  # its index among the candidates
    scores: list[float] | None  # mean log-likelihood per candidate (select="likelihood"), else None
    candidates: list[Adapter] = field(default_factory=list)  # every decoded candidate, in draw order


def _pairs(examples) -> list[tuple[str, str]]:
    pairs = []
    for e in examples or []:
        if isinstance(e, dict):
            pairs.append((e["prompt"], e["completion"]))
        else:
            prompt, completion = e
            pairs.append((prompt, completion))
    return pairs


def generate(generator: Generator, condition: torch.Tensor, config: GenerateConfig | None = None,
             progress: Progress | None = None, model=None, tokenizer=None, examples=None) -> GenerateResult:
    """Decode config.samples candidates for `condition` and keep one (the first, or the most likely on `examples`).

    Candidate i is always decoded from row i of the same seeded draw, so raising `samples` only adds candidates.
    select="likelihood" needs the base `model`, its `tokenizer` and `examples` ((prompt, completion) pairs or
    {"prompt", "completion"} dicts). progress("generating", i, samples) after each decoded candidate and
    progress("scoring", i, samples, {"loglik"}) after each scored one."""
    config = config or GenerateConfig()
    condition = generator.check_condition(condition)
    pairs = _pairs(examples)
    if config.select == "likelihood":
        if model is None or tokenizer is None or not pairs:
            raise GenerationError('select="likelihood" needs the base model, its tokenizer and some examples')

    noise = torch.Generator().manual_seed(config.seed)
    # row by row: torch's CPU randn fills fewer than 16 values by another path than 16 or more, so one (samples,
    # latent) draw would not start with the (1, latent) one when latent is small (basis generators cap it)
    z = torch.cat([torch.randn(1, generator.latent, generator=noise) for _ in range(config.samples)])
    z = z * config.temperature
    candidates = []
    for i in range(config.samples):  # one at a time: a SmolLM2-sized decode is ~2 MB of output per row
        candidates.extend(generator.decode(z[i:i + 1], condition))
        if progress is not None:
            progress("generating", i + 1, config.samples)

    if config.select == "none":
        return GenerateResult(adapter=candidates[0], chosen=0, scores=None, candidates=candidates)

    problems = candidates[0].mismatches(module_shapes(model))
    if problems:
        raise GenerationError(f"the generator's adapters do not fit this model: {problems[:3]}")
    scores = []
    for i, candidate in enumerate(candidates):
        values = loglik(model, tokenizer, pairs, adapter=candidate)
        scores.append(sum(values) / len(values))
        if progress is not None:
            progress("scoring", i + 1, config.samples, {"loglik": scores[-1]})
    # ties go to the earliest draw; a NaN score (a degenerate candidate) never wins
    chosen = max(range(len(scores)), key=lambda i: scores[i] if not math.isnan(scores[i]) else -math.inf)
    return GenerateResult(adapter=candidates[chosen], chosen=chosen, scores=scores, candidates=candidates)
