"""Synthetic inputs: draw candidates from a base model and keep the ones the discriminator scores as real enough,
with a cap on attempts.

Both phases use this. At kit time the source base generates the discriminator's negatives (no scorer: every
non-empty candidate is kept); at transfer time the target base generates candidates and the discriminator scores
them. The loop alternates one batch of generation with one batch of scoring, so progress and the fail-fast rule
act batch by batch instead of after the whole budget is spent. Scores (not yes/no verdicts) come back from the
scorer so that, once the budget is spent, the best-ranked rejected candidates can make up the set: a filter that
ranks never ends with nothing.
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
Score = Callable[[list[str]], list[float]]  # candidates -> how "real" each looks (the discriminator's p(yes))
Accept = Callable[[float], bool]  # a score -> keep the candidate or not


@dataclass
class Collection:
    """What a synthesis run drew and kept."""

    kept: list[str]  # the kept candidates, exactly `wanted` of them: accepted ones in draw order, then any filled
    judged: list[str]  # every non-empty candidate drawn (the unfiltered pool; kept is a subset)
    scores: list[float] = field(default_factory=list)  # one per judged candidate when a scorer ran
    kept_index: list[int] = field(default_factory=list)  # where each kept candidate is in `judged`
    drawn: int = 0  # candidates generated, empty ones included: what max_attempts counts
    empty: int = 0  # candidates that were empty after cutting (dropped before judging)
    accepted: int = 0  # accepted by the rule, including any beyond `wanted` in the last batch
    filled: int = 0  # kept because they ranked best among the rejected ones once the budget was spent
    seconds: dict[str, float] = field(default_factory=dict)  # generation and judging time

    @property
    def acceptance_rate(self) -> float:
        """accepted / judged: the share of real candidates the rule let through (empty ones are not its doing;
        candidates kept by rank are not counted as accepted)."""
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


def collect(draw: Draw, score: Score | None, wanted: int, *, max_attempts: int, batch_size: int,
            accept: Accept | None = None, fill: bool = False, give_up_after: int | None = None,
            progress: Progress | None = None, stage: str = "generating candidates") -> Collection:
    """Draw batches until `wanted` candidates are accepted (every non-empty one when score is None).

    With a scorer, a candidate is accepted when accept(score) holds. When max_attempts draws did not yield
    `wanted` accepted candidates: with fill, the best-scoring rejected candidates make up the rest (a ranking,
    so the run never ends with nothing); without it, TransferError. give_up_after (only without fill) stops early
    when that many judged candidates were all rejected.

    progress(stage, drawn, max_attempts) after each generated batch and ("filtering", accepted-and-kept, wanted,
    {"acceptance_rate"}) after each judged one."""
    if wanted < 1:
        raise ValueError(f"the synthetic set must have at least one example, got {wanted}")
    if score is not None and accept is None:
        raise ValueError("a scorer needs an acceptance rule")
    progress = progress or silent
    out = Collection(kept=[], judged=[], seconds={stage: 0.0, "filtering": 0.0} if score else {stage: 0.0})
    while len(out.kept) < wanted:
        if out.drawn >= max_attempts:
            if fill and score is not None and len(out.judged) >= wanted:
                _fill_by_rank(out, wanted)
                progress("filtering", len(out.kept), wanted, {"acceptance_rate": out.acceptance_rate})
                break
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
        if score is None:
            verdicts = [True] * len(candidates)
        else:
            start = time.perf_counter()
            scores = [float(s) for s in score(candidates)]
            out.seconds["filtering"] += time.perf_counter() - start
            out.scores.extend(scores)
            verdicts = [bool(accept(s)) for s in scores]
        offset = len(out.judged)
        out.judged.extend(candidates)
        accepted = [offset + i for i, ok in enumerate(verdicts) if ok]
        out.accepted += len(accepted)
        room = accepted[: wanted - len(out.kept)]
        out.kept_index.extend(room)
        out.kept.extend(out.judged[i] for i in room)
        if score is not None:
            progress("filtering", len(out.kept), wanted, {"acceptance_rate": out.acceptance_rate})
            if (not fill and give_up_after is not None and out.accepted == 0
                    and len(out.judged) >= give_up_after):
                raise TransferError(
                    f"the discriminator rejected all of the first {len(out.judged)} candidates (acceptance rate "
                    f"0.0%, give_up_after={give_up_after}); the target base's inputs look nothing like the task's "
                    f"to it, so more attempts would not help", out.stats(wanted))
    return out


def _fill_by_rank(out: Collection, wanted: int) -> None:
    """Top up `out.kept` with the highest-scoring judged candidates not kept yet (earlier draw first on ties)."""
    taken = set(out.kept_index)
    order = sorted((i for i in range(len(out.judged)) if i not in taken), key=lambda i: (-out.scores[i], i))
    extra = order[: wanted - len(out.kept)]
    out.filled = len(extra)
    out.kept_index.extend(extra)
    out.kept.extend(out.judged[i] for i in extra)
