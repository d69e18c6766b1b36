"""Accuracies with intervals, and goal verdicts from paired bootstraps.

Why a bootstrap and why paired: with 40 test items an accuracy is ±0.07, so two methods a few points apart cannot be
told apart by their point values. Every method in a report is scored on the same items, so a comparison resamples
items (the same indices for every system) and looks at the distribution of the difference; that cancels the
item-difficulty noise two independent intervals would double-count. A goal is phrased so that it holds when its
difference is >= 0 (e.g. `transferred - max(source, target base)`, `generated - 0.9 * trained`), and its verdict is
`held` when the whole 95 % interval is >= 0, `not held` when it is entirely below 0, `undecided` when it straddles 0.

Goals over several tasks (a merge's mean over four tasks) resample within each task (stratified), so every
replicate keeps each task's size.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

HELD, NOT_HELD, UNDECIDED = "held", "not held", "undecided"
N_BOOT = 2000
LEVEL = 0.95


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def accuracy(correct: Sequence[float], n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict:
    """{"value", "ci_low", "ci_high", "n"}: the mean of per-item scores (0/1 for exact match) with a percentile
    bootstrap interval over items. An empty list is an error, not a 0: a score of nothing means a broken run."""
    x = np.asarray(correct, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("accuracy needs a non-empty list of per-item scores")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = _interval(means, level)
    return {"value": float(x.mean()), "ci_low": low, "ci_high": high, "n": int(x.size)}


def verdict(ci_low: float, ci_high: float) -> str:
    """held when the difference's interval is all >= 0, not held when all < 0, else undecided."""
    if ci_low >= 0:
        return HELD
    if ci_high < 0:
        return NOT_HELD
    return UNDECIDED


Strata = Mapping[str, Mapping[str, Sequence[float]]]  # task -> system -> per-item scores (same items per task)


def paired_bootstrap(strata: Strata, statistic: Callable[[dict[str, dict[str, float]]], float],
                     n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict:
    """{"diff", "ci_low", "ci_high", "verdict"} of statistic(means), where means[task][system] is a system's mean on
    that task's items and every replicate draws one set of item indices per task shared by all its systems."""
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for task, systems in strata.items():
        arrays[task] = {name: np.asarray(v, dtype=float) for name, v in systems.items()}
        sizes = {a.size for a in arrays[task].values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"task {task!r}: every system needs scores on the same non-empty items, got sizes "
                             f"{sorted(sizes)}")
    point = statistic({t: {s: float(a.mean()) for s, a in systems.items()} for t, systems in arrays.items()})
    rng = np.random.default_rng(seed)
    replicate_means: dict[str, dict[str, np.ndarray]] = {}
    for task, systems in arrays.items():
        n = next(iter(systems.values())).size
        index = rng.integers(0, n, size=(n_boot, n))
        replicate_means[task] = {s: a[index].mean(axis=1) for s, a in systems.items()}
    samples = np.array([statistic({t: {s: float(m[i]) for s, m in systems.items()}
                                   for t, systems in replicate_means.items()}) for i in range(n_boot)])
    low, high = _interval(samples, level)
    return {"diff": float(point), "ci_low": low, "ci_high": high, "verdict": verdict(low, high)}


@dataclass(frozen=True)
class Goal:
    """One goal a method's report checks: `text` for the reader, and statistic(means) >= 0 when it holds.

    `systems` names the per-item score series the statistic reads (so a report can say which are missing instead of
    raising). A goal with per_task=True is checked on every task on its own; otherwise once over all tasks."""

    text: str
    systems: tuple[str, ...]
    statistic: Callable[[dict[str, float]], float] | Callable[[dict[str, dict[str, float]]], float]
    per_task: bool = True


def check(goal: Goal, scores: Mapping[str, Mapping[str, Sequence[float]]], n_boot: int = N_BOOT,
          seed: int = 0) -> list[dict]:
    """The goal's entries for a report's "goals" list: {"goal", "task", "verdict", "diff", "ci_low", "ci_high"}.

    `scores` is task -> system -> per-item scores. A task lacking a system the goal needs (a failed job) gets
    verdict "not held" with null numbers and the missing systems named: a goal a run could not measure is not met."""
    entries = []
    if goal.per_task:
        for task, systems in scores.items():
            missing = [s for s in goal.systems if s not in systems]
            if missing and all(s not in systems for s in goal.systems):
                continue  # the goal is not about this task at all
            entries.append(_entry(goal, task, {task: systems}, missing, lambda m, t=task: goal.statistic(m[t]),
                                  n_boot, seed))
    else:
        relevant = {t: s for t, s in scores.items() if any(name in s for name in goal.systems)}
        missing = sorted({f"{t}:{name}" for t, s in relevant.items() for name in goal.systems if name not in s})
        if relevant:
            entries.append(_entry(goal, None, relevant, missing, goal.statistic, n_boot, seed))
    if not entries:  # nothing this goal needs was measured at all (a method the hub does not offer yet, a failure)
        entries.append({"goal": goal.text, "task": None, "verdict": NOT_HELD, "diff": None, "ci_low": None,
                        "ci_high": None, "missing": list(goal.systems)})
    return entries


def _entry(goal: Goal, task, strata, missing, statistic, n_boot, seed) -> dict:
    entry = {"goal": goal.text, "task": task}
    if missing:
        return {**entry, "verdict": NOT_HELD, "diff": None, "ci_low": None, "ci_high": None,
                "missing": list(missing)}
    picked = {t: {s: v for s, v in systems.items() if s in goal.systems} for t, systems in strata.items()}
    return {**entry, **paired_bootstrap(picked, statistic, n_boot=n_boot, seed=seed)}


def fixed(text: str, diff: float, task: str | None = None) -> dict:
    """A goal on a number with no sampling noise (a size ratio): its interval is the point itself."""
    return {"goal": text, "task": task, "verdict": HELD if diff >= 0 else NOT_HELD, "diff": float(diff),
            "ci_low": float(diff), "ci_high": float(diff)}
