"""Synthetic inputs: draw candidates from a base model and keep the ones a judge accepts, with a cap on attempts.

Both phases use this. At kit time the source base generates the discriminator's negatives (no judge: every
non-empty candidate is kept); at transfer time the target base generates candidates and the discriminator judges
them. The loop alternates one batch of generation with one batch of judging, so progress and the fail-fast rule
act batch by batch instead of after the whole budget is spent.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

from lora.evaluation import generate
from lora.progress import Progress, silent
from transfer.errors import TransferError
from transfer.prompts import next_item_stop, shuffled_prompts

Draw = Callable[[int], list[str]]  # n -> n candidate inputs ("" where the model produced nothing usable)
Judge = Callable[[list[str]], list[bool]]  # candidates -> keep or not, one verdict each


@dataclass
class Collection:
    """What a synthesis run drew and kept."""

    kept: list[str]  # the accepted candidates, in draw order, exactly `wanted` of them
    judged: list[str]  # every non-empty candidate drawn (the unfiltered pool; kept is a subset)
    drawn: int = 0  # candidates generated, empty ones included: what max_attempts counts
    empty: int = 0  # candidates that were empty after cutting (dropped before judging)
    accepted: int = 0  # accepted by the judge, including any beyond `wanted` in the last batch
    seconds: dict[str, float] = field(default_factory=dict)  # generation and judging time

    @property
    def acceptance_rate(self) -> float:
        """accepted / judged: the share of real candidates the judge let through (empty ones are not its doing)."""
        return self.accepted / len(self.judged) if self.judged else 0.0

    def stats(self, wanted: int) -> dict:
        return {"drawn": self.drawn, "empty": self.empty, "judged": len(self.judged), "accepted": self.accepted,
                "acceptance_rate": self.acceptance_rate, "wanted": wanted}


def candidate_drawer(model, tokenizer, seed_inputs: list[str], *, temperature: float, top_p: float,
                     max_new_tokens: int, batch_size: int, seed: int) -> Draw:
    """A seeded draw function: each call samples n continuations of generator prompts (seeds in a fresh order per
    prompt), cut at the next item number and stripped. Only text leaves it: no token ids cross to another model."""
    rng = random.Random(seed)
    stop = (next_item_stop(len(seed_inputs)),)

    def draw(n: int) -> list[str]:
        prompts = shuffled_prompts(seed_inputs, n, rng)
        texts = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, do_sample=True,
                         temperature=temperature, top_p=top_p, stop=stop, seed=rng.randrange(2**31),
                         batch_size=batch_size)
        return [t.strip() for t in texts]

    return draw


def collect(draw: Draw, judge: Judge | None, wanted: int, *, max_attempts: int, batch_size: int,
            give_up_after: int | None = None, progress: Progress | None = None,
            stage: str = "generating candidates") -> Collection:
    """Draw batches until `wanted` candidates are accepted (every non-empty one when judge is None).

    progress(stage, drawn, max_attempts) after each generated batch and ("filtering", accepted, wanted,
    {"acceptance_rate"}) after each judged one. Raises TransferError when max_attempts draws did not suffice, or,
    with a judge, when the first `give_up_after` judged candidates were all rejected (fail fast)."""
    if wanted < 1:
        raise ValueError(f"the synthetic set must have at least one example, got {wanted}")
    progress = progress or silent
    out = Collection(kept=[], judged=[], seconds={stage: 0.0, "filtering": 0.0} if judge else {stage: 0.0})
    while len(out.kept) < wanted:
        if out.drawn >= max_attempts:
            raise TransferError(
                f"synthesis hit max_attempts={max_attempts}: {out.accepted} of {len(out.judged)} judged candidates "
                f"accepted (acceptance rate {out.acceptance_rate:.1%}, {out.empty} empty), {wanted} needed; "
                f"raise max_attempts or check the discriminator and the generator's temperature",
                out.stats(wanted))
        start = time.perf_counter()
        batch = draw(min(batch_size, max_attempts - out.drawn))
        out.seconds[stage] += time.perf_counter() - start
        out.drawn += len(batch)
        progress(stage, out.drawn, max_attempts)
        candidates = [c for c in batch if c]
        out.empty += len(batch) - len(candidates)
        if not candidates:
            continue
        if judge is None:
            verdicts = [True] * len(candidates)
        else:
            start = time.perf_counter()
            verdicts = list(judge(candidates))
            out.seconds["filtering"] += time.perf_counter() - start
        out.judged.extend(candidates)
        accepted = [c for c, ok in zip(candidates, verdicts) if ok]
        out.accepted += len(accepted)
        out.kept.extend(accepted[: wanted - len(out.kept)])
        if judge is not None:
            progress("filtering", len(out.kept), wanted, {"acceptance_rate": out.acceptance_rate})
            if give_up_after is not None and out.accepted == 0 and len(out.judged) >= give_up_after:
                raise TransferError(
                    f"the discriminator rejected all of the first {len(out.judged)} candidates (acceptance rate "
                    f"0.0%, give_up_after={give_up_after}); the target base's inputs look nothing like the task's "
                    f"to it, so more attempts would not help", out.stats(wanted))
    return out
