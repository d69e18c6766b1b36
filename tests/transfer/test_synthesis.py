"""The prompts, and the draw-and-filter loop on plain functions: it stops at exactly the wanted size, counts
empty candidates apart, tops the set up with the best-ranked candidates when it may (so it never ends with nothing),
and otherwise fails at the attempts cap and fails fast when nothing is accepted."""
from __future__ import annotations

import random

import pytest

from lora.progress import Cancelled
from transfer import TransferError, discriminator_prompt, generator_prompt
from transfer.prompts import next_item_stop, shuffled_prompts
from transfer.synthesis import collect


def test_prompts_are_the_ones_in_methods_md():
    assert discriminator_prompt("2+2 =", "math") == "2+2 =\nIs the above question from the math dataset?"
    seeds = ["a", "b", "c", "d", "e"]
    assert generator_prompt(seeds) == "Here are 10 examples:\n1. a\n2. b\n3. c\n4. d\n5. e\n6."
    assert next_item_stop(5) == "\n7."
    with pytest.raises(ValueError):
        generator_prompt([])


def test_shuffled_prompts_show_every_seed_once_in_varying_orders():
    prompts = shuffled_prompts(["a", "b", "c", "d", "e"], 20, random.Random(0))
    bodies = [sorted(line.split(". ", 1)[1] for line in p.splitlines()[1:6]) for p in prompts]
    assert all(body == ["a", "b", "c", "d", "e"] for body in bodies)
    assert len(set(prompts)) > 1 and all(p.endswith("\n6.") for p in prompts)


def counting_draw(pattern):
    """Draw function yielding "x0", "x1", ... with "" wherever pattern(i) is falsy."""
    state = {"i": 0, "calls": 0}

    def draw(n):
        state["calls"] += 1
        out = []
        for _ in range(n):
            i = state["i"]
            out.append(f"x{i}" if pattern(i) else "")
            state["i"] += 1
        return out

    return draw, state


def index_scorer(scores_by_index):
    """A scorer for counting_draw's "x<i>" candidates: score = scores_by_index(i), calls recorded."""
    calls = []

    def score(candidates):
        calls.append(list(candidates))
        return [scores_by_index(int(c[1:])) for c in candidates]

    return score, calls


def above(threshold):
    return lambda s: s > threshold


def test_collect_keeps_exactly_wanted_accepted_candidates_in_draw_order():
    draw, _ = counting_draw(lambda i: i % 4 != 3)  # every 4th candidate is empty
    score, calls = index_scorer(lambda i: 1.0 if i % 2 == 0 else 0.0)
    out = collect(draw, score, 5, max_attempts=100, batch_size=8, accept=above(0.5))
    assert out.kept == ["x0", "x2", "x4", "x6", "x8"] and out.filled == 0
    assert out.drawn == 16 and out.empty == 4 and len(out.judged) == 12 == len(out.scores)
    # the second batch's "x10", "x12", "x14" are accepted too but not needed: counted, not kept
    assert out.accepted == 8 and out.acceptance_rate == pytest.approx(8 / 12)
    assert all("" not in call for call in calls)  # empty candidates never reach the scorer
    assert [out.judged[i] for i in out.kept_index] == out.kept


def test_collect_without_a_scorer_keeps_every_non_empty_candidate():
    draw, _ = counting_draw(lambda i: i != 1)
    out = collect(draw, None, 3, max_attempts=10, batch_size=2)
    assert out.kept == ["x0", "x2", "x3"] and out.acceptance_rate == 1.0 and out.empty == 1


def test_collect_raises_at_the_attempts_cap_naming_the_acceptance_rate():
    draw, _ = counting_draw(lambda i: True)
    score, _ = index_scorer(lambda i: 1.0 if i == 3 else 0.0)
    with pytest.raises(TransferError, match=r"max_attempts=10: 1 of 10 judged candidates accepted "
                                            r"\(acceptance rate 10\.0%") as caught:
        collect(draw, score, 2, max_attempts=10, batch_size=4, accept=above(0.5))
    assert caught.value.stats == {"drawn": 10, "empty": 0, "judged": 10, "accepted": 1, "acceptance_rate": 0.1,
                                  "wanted": 2}


def test_fill_tops_up_with_the_best_scoring_rejected_candidates_at_the_cap():
    draw, _ = counting_draw(lambda i: True)
    # x3 passes the threshold; of the rest x7 then x1 score highest; x9 ties x1 and loses on draw order
    table = {3: 0.9, 7: 0.4, 1: 0.3, 9: 0.3}
    score, _ = index_scorer(lambda i: table.get(i, 0.1))
    out = collect(draw, score, 3, max_attempts=10, batch_size=4, accept=above(0.5), fill=True)
    assert out.kept == ["x3", "x7", "x1"]
    assert out.accepted == 1 and out.filled == 2 and out.drawn == 10
    assert out.acceptance_rate == pytest.approx(0.1)  # candidates kept by rank are not counted as accepted


def test_ranking_alone_keeps_the_top_of_the_whole_pool():
    draw, _ = counting_draw(lambda i: True)
    score, _ = index_scorer(lambda i: -abs(i - 5))  # x5 best, then x4 and x6, ...
    out = collect(draw, score, 3, max_attempts=12, batch_size=4, accept=lambda s: False, fill=True)
    assert out.kept == ["x5", "x4", "x6"] and out.drawn == 12 and out.accepted == 0 and out.filled == 3


def test_fill_never_accepts_nothing_even_when_every_candidate_is_rejected():
    draw, state = counting_draw(lambda i: True)
    score, _ = index_scorer(lambda i: 0.0)
    out = collect(draw, score, 5, max_attempts=16, batch_size=4, accept=above(0.5), fill=True, give_up_after=4)
    assert len(out.kept) == 5 and out.filled == 5 and state["calls"] == 4  # give_up_after does not apply


def test_fill_still_fails_when_too_few_candidates_were_drawn_at_all():
    draw, _ = counting_draw(lambda i: i < 2)  # only two non-empty candidates ever
    score, _ = index_scorer(lambda i: 0.0)
    with pytest.raises(TransferError, match="max_attempts=8"):
        collect(draw, score, 5, max_attempts=8, batch_size=4, accept=above(0.5), fill=True)


def test_collect_fails_fast_when_nothing_is_accepted():
    draw, state = counting_draw(lambda i: True)
    score, _ = index_scorer(lambda i: 0.0)
    with pytest.raises(TransferError, match="rejected all of the first 12 candidates"):
        collect(draw, score, 5, max_attempts=1000, batch_size=4, accept=above(0.5), give_up_after=10)
    assert state["calls"] == 3  # 12 judged >= 10 after the third batch


def test_one_acceptance_disarms_fail_fast():
    draw, _ = counting_draw(lambda i: True)
    score, _ = index_scorer(lambda i: 1.0 if i == 0 else 0.0)
    with pytest.raises(TransferError, match="max_attempts=40"):
        collect(draw, score, 5, max_attempts=40, batch_size=4, accept=above(0.5), give_up_after=4)


def test_collect_lets_cancellation_through():
    draw, state = counting_draw(lambda i: True)

    def progress(stage, done, total, metrics=None):
        if stage == "filtering":
            raise Cancelled()

    score, _ = index_scorer(lambda i: 1.0)
    with pytest.raises(Cancelled):
        collect(draw, score, 50, max_attempts=100, batch_size=4, accept=above(0.5), progress=progress)
    assert state["calls"] == 1
