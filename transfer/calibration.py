"""How good the discriminator is, and where its acceptance threshold goes.

The paper's filter keeps a candidate when p(yes) > p(no). With small bases that rule either accepts almost nothing
(a discriminator that has learnt "the target base's text is not the task's") or almost everything (one at chance),
and the run fails or filters at random. So the threshold is calibrated on what the discriminator says about real
inputs it never trained on: accept a candidate that scores at least as "real" as the q-quantile of held-out real
inputs (q = 0.1: as real as the least real tenth of the task's own inputs). Those scores are kept in the kit, so a
transfer can pick its own q. Whether the discriminator is worth listening to at all is a statistics question: its
held-out balanced accuracy, with a Wilson interval, is "at chance" when the interval reaches 0.5.
"""
from __future__ import annotations

import math

# the normal quantile for a two-sided 95 % interval
Z95 = 1.959963984540054


def quantile(values: list[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics (numpy's default "linear" method)."""
    if not values:
        raise ValueError("a quantile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {q!r}")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when n is 0. Sound at small n, unlike the normal one."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def auroc(positive: list[float], negative: list[float]) -> float | None:
    """P(score of a random positive > score of a random negative), ties counted half (Mann-Whitney U / n1 n2).
    What the ranking and calibrated filters depend on: the order of the scores, not where 0.5 falls."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def heldout_quality(real_scores: list[float], synthetic_scores: list[float]) -> dict:
    """Held-out numbers of a discriminator from p_real of held-out real and synthetic inputs (threshold 0.5 for the
    accuracies, as the paper's rule; AUROC for the order). Balanced accuracy is the mean of the per-class ones, so
    a class imbalance in the held-out set cannot make a constant answer look good. Its 95 % interval counts every
    held-out example (Wilson on the balanced accuracy over n = both classes)."""
    real_ok = [s > 0.5 for s in real_scores]
    synthetic_ok = [s <= 0.5 for s in synthetic_scores]
    both = real_ok + synthetic_ok
    per_class = [sum(x) / len(x) for x in (real_ok, synthetic_ok) if x]
    balanced = sum(per_class) / len(per_class) if per_class else None
    low, high = wilson_interval(balanced * len(both), len(both)) if balanced is not None else (0.0, 1.0)
    return {
        "heldout_accuracy": sum(both) / len(both) if both else None,
        "heldout_real_accuracy": sum(real_ok) / len(real_ok) if real_ok else None,
        "heldout_synthetic_accuracy": sum(synthetic_ok) / len(synthetic_ok) if synthetic_ok else None,
        "heldout_balanced_accuracy": balanced,
        "heldout_balanced_accuracy_ci95": [low, high],
        "heldout_auroc": auroc(real_scores, synthetic_scores),
    }


def chance_warning(quality: dict, n_heldout: int) -> str | None:
    """A sentence for the kit's report, the job log and the CLI when the discriminator cannot be told apart from a
    coin on its held-out data (or was not measured); None when it clearly beats chance."""
    balanced = quality.get("heldout_balanced_accuracy")
    if balanced is None:
        return ("discriminator not measured: no held-out data of both classes (heldout_fraction=0 or too little "
                "data); the transfer's calibrated filter has no real scores to calibrate on and falls back to "
                "p(yes) > p(no) with the best-ranked candidates filling the rest")
    low, high = quality["heldout_balanced_accuracy_ci95"]
    if low > 0.5:
        return None
    return (f"discriminator at chance on held-out data: balanced accuracy {balanced:.2f} (95% CI {low:.2f}-"
            f"{high:.2f}, {n_heldout} held-out examples, AUROC {_fmt(quality.get('heldout_auroc'))}); its filter "
            f"keeps near-random candidates. More real data, more synthetic negatives or more discriminator steps "
            f"would help; data=unfiltered is the honest alternative")


def calibration_table(real_scores: list[float], synthetic_scores: list[float],
                      quantiles=(0.05, 0.1, 0.25, 0.5)) -> list[dict]:
    """For a few q: the threshold the calibrated filter would use, and the share of held-out synthetic inputs it
    would still accept (what the kit's own negatives say about the filter's strictness)."""
    if not real_scores:
        return []
    rows = []
    for q in quantiles:
        threshold = quantile(real_scores, q)
        accepted = (sum(s >= threshold for s in synthetic_scores) / len(synthetic_scores)
                    if synthetic_scores else None)
        rows.append({"quantile": q, "threshold": threshold, "heldout_synthetic_accepted": accepted})
    return rows


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
