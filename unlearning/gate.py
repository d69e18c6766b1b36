"""The paper's soft weight: how much of the unlearning LoRA an input gets (methods.md O3 step 3), kept as an ablation.

    F(x) = ½Φ((x − m1)/s) + ½Φ((x − m2)/s)          m1 = mean detector score on the used split,
    w(x) = σ(ζ·(1 − |2F(x) − 1|) − 2)                m2 = mean on the rest split, s = std on the rest split

Orientation. Our detector scores are oriented "higher = more like the forget set" (unlearning/detector.py). F is the
CDF of an equal mixture of two Gaussians centred on the used and rest means, so 1 − |2F − 1| is 1 at the mixture's
median and falls to 0 in both tails: w ≈ σ(ζ − 2) ≈ 1 for a typical forget input and σ(−2) ≈ 0.12 far away. The
formula as written is symmetric, so it also unloads the LoRA for inputs in the *upper* tail, i.e. inputs that look
even more like the forget set than its own typical examples (a verbatim forget prompt, whose cosine term is maximal,
can land there). That contradicts the intent (forget-like ⇒ weight near 1), so by default (one_sided=True) the upper
tail keeps the median's value: w(x) = σ(ζ·2·min(F(x), ½) − 2), identical to methods.md for every x below the
median. one_sided=False gives the formula exactly as written.

Note the floor: far from every forget set w → σ(−2) ≈ 0.12, not 0 (the paper's form), and m1, m2, s come from the
detector's own splits. Measured: retained tasks fell to 0.90 of before under that 12 %, and unseen inputs
of a forgotten task got 0.67–0.84. This is therefore the ablation (UnlearnConfig.gate = "paper", or gate="paper" at
inference); the default is the calibrated gate of lora/gating.py (exactly 0 far from every forget set, fitted on
held-out forget inputs and reference inputs), which unlearning/detector.py `calibrate` fits.
"""
from __future__ import annotations

import math


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def soft_weight(score: float, m1: float, m2: float, s: float, zeta: float = 10.0, one_sided: bool = True) -> float:
    """w(score) in (0, 1) for one detector's calibration (see the module docstring)."""
    f = 0.5 * normal_cdf((score - m1) / s) + 0.5 * normal_cdf((score - m2) / s)
    if one_sided:
        f = min(f, 0.5)
    return sigmoid(zeta * (1.0 - abs(2.0 * f - 1.0)) - 2.0)


def calibration(used_scores: list[float], rest_scores: list[float]) -> tuple[float, float, float]:
    """(m1, m2, s) from the detector's scores on the used and rest splits. s is the sample std (n − 1) of the rest
    scores, floored at a tiny positive value so F stays defined when the rest scores coincide."""
    if len(used_scores) < 1 or len(rest_scores) < 2:
        raise ValueError("calibration needs at least one used and two rest scores")
    m1 = sum(used_scores) / len(used_scores)
    m2 = sum(rest_scores) / len(rest_scores)
    var = sum((x - m2) ** 2 for x in rest_scores) / (len(rest_scores) - 1)
    s = max(math.sqrt(var), 1e-6 * (1.0 + abs(m2)))
    return m1, m2, s
