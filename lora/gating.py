"""Per-input gates on LoRA deltas: the mechanism (scale ΔW x row by row) and a calibrated gate (score -> weight).

One module for every gate in the project: O3's unlearning gate (unlearning/) uses both halves, and a routed merge's
router (merging/route.py) is the same mechanism with one gate per expert: `Router` turns the experts' scores into
per-input weights through each expert's calibration (its normalised scores are comparable across experts), and the
routed inference scales each expert's delta row by row with `lora_delta_scale`.

Mechanism. PEFT's LoRA Linear computes base(x) + lora_B(lora_A(dropout(x))) · scaling. The delta is the output of
lora_B times a constant, so multiplying lora_B's output row-wise by w scales exactly ΔW x per input and leaves W x
alone. A forward hook on each lora_B does that without touching PEFT's code; the hooks are removed on exit. With
w = 0 the delta becomes zeros and adds exactly nothing: the output is the one without that adapter, bit for bit.

Calibration (`fit_gate`). A detector's raw scores can sit on any scale (O3's glocal scores: a few units near its
training inputs, minus thousands for new inputs of the same task, minus a million for unrelated ones), so each
detector's scores are first normalised,
    z(x) = asinh((x − c) / s),   c, s = an anchor: by default the median and std of the held-out positives; O3
                                 passes the mean and std of the detector's own training inputs' scores (more of them)
about linear within the anchor's spread and logarithmic far outside it (one z unit ≈ a factor e in distance), so a
width in z means the same thing for every detector and a router can compare z across experts. On z the gate is a
logistic ramp rescaled to hit exactly 0 and exactly 1 at its ends:
    w(z) = clamp((σ((z − t)/τ) − σ(−K)) / (σ(K) − σ(−K)), 0, 1),   K = 4,
i.e. w = 0 for z ≤ t − Kτ ("closed": the input gets exactly what it got without the gated delta) and w = 1 for
z ≥ t + Kτ ("open"). Fitting: the positives' edge is `tail_sd` standard deviations (at least MIN_SPREAD z units
each: a handful of held-out inputs understate the spread) below their mean z, the negatives' edge is the highest z of
any negative (reference inputs that must keep the gate shut). When the edges do not cross, the ramp is centred
between them (the largest margin on both sides: unseen positives may score lower than the held-out ones, unseen
negatives higher than the reference ones), at most `max_width` wide. When they cross no ramp can satisfy both; the
threshold then goes where (true positive rate − false positive rate) is largest on the calibration scores, with a
narrow ramp, and `separable` is False. Fit on held-out positives: on its own training inputs a detector scores far
higher than on new inputs of the same distribution.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from peft.tuners.lora import LoraLayer

K = 4.0  # the ramp spans t ± K·τ; σ(±4) = 0.018 / 0.982 before the rescaling to exact 0 and 1
MIN_SPREAD = 1.0  # z units: the least standard deviation fit_gate assumes for the positives
OVERLAP_HALF_WIDTH = 0.25  # z units either side of the threshold when positives and negatives overlap
OPEN, CLOSED = 0.9, 0.05  # what "open" and "closed" mean in the reports (gate_summary)


# ---------------------------------------------------------------------------------------------------- mechanism

def _lora_b_modules(peft_model, adapter_names=None) -> list[torch.nn.Module]:
    found = []
    for module in peft_model.modules():
        if isinstance(module, LoraLayer):
            names = module.active_adapters if adapter_names is None else adapter_names
            present = [name for name in names if name in module.lora_B]
            if present and getattr(module, "merged", False):
                raise ValueError("gating needs unmerged LoRA layers: the delta of a merged layer cannot be scaled")
            found.extend(module.lora_B[name] for name in present)
    if not found:
        which = "active" if adapter_names is None else f"{list(adapter_names)}"
        raise ValueError(f"model has no {which} LoRA layers to gate")
    return found


@contextmanager
def lora_delta_scale(peft_model, weights, adapter_names: list[str] | None = None):
    """Inside the block every forward pass of `peft_model` scales row i's LoRA delta by weights[i].

    weights: shape (batch,), matching the batch of every forward call made inside the block (generation keeps the
    batch size, so it works for generate() too). w = 0 gives the output without the delta, w = 1 the adapter's.
    adapter_names: gate only these adapters' deltas (default: every active adapter)."""
    weights = torch.as_tensor(np.asarray(weights, dtype=np.float32)).flatten()

    def hook(module, inputs, output):
        if output.shape[0] != weights.shape[0]:
            raise ValueError(f"gate has {weights.shape[0]} weights but the batch has {output.shape[0]} rows")
        w = weights.to(device=output.device, dtype=output.dtype)
        return output * w.view(-1, *([1] * (output.dim() - 1)))

    handles = [m.register_forward_hook(hook) for m in _lora_b_modules(peft_model, adapter_names)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------------- calibration

def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


@dataclass
class GateCalibration:
    """score -> weight for one detector (see the module docstring); plain numbers, stored as JSON."""

    center: float  # c: median raw score of the held-out positives
    scale: float  # s: their standard deviation (floored)
    threshold: float  # t, in normalised units
    temperature: float  # τ, in normalised units
    open_at: float  # z from which w = 1 (t + Kτ)
    closed_at: float  # z up to which w = 0 (t − Kτ)
    separable: bool  # the held-out positives and the negatives did not overlap
    n_positive: int = 0
    n_negative: int = 0

    def normalise(self, scores) -> np.ndarray:
        """z = asinh((x − c)/s): comparable across detectors (a router can compare or softmax these)."""
        return np.arcsinh((np.asarray(scores, dtype=np.float64) - self.center) / self.scale)

    def weights_from_normalised(self, z) -> np.ndarray:
        low, high = _sigmoid(-K), _sigmoid(K)
        p = _sigmoid((np.asarray(z, dtype=np.float64) - self.threshold) / self.temperature)
        w = np.clip((p - low) / (high - low), 0.0, 1.0)
        z = np.asarray(z, dtype=np.float64)
        # exact ends, whatever the float rounding of the logistic
        return np.where(z <= self.closed_at, 0.0, np.where(z >= self.open_at, 1.0, w))

    def weights(self, scores) -> np.ndarray:
        return self.weights_from_normalised(self.normalise(scores))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GateCalibration":
        return cls(**{k: (bool(v) if k == "separable" else int(v) if k.startswith("n_") else float(v))
                      for k, v in data.items()})


def fit_gate(positives, negatives, tail_sd: float = 2.33, max_width: float = 2.0, center: float | None = None,
             scale: float | None = None) -> GateCalibration:
    """Fit a gate that opens for inputs like `positives` and stays exactly shut for inputs like `negatives`.

    positives: raw scores of HELD-OUT inputs that should open the gate (at least 2); negatives: raw scores of inputs
    that must not (at least 1). tail_sd: how many standard deviations below the positives' mean z their edge lies;
    max_width: the longest ramp, in z units; center, scale: the normalisation's anchor (default: the positives'
    median and std). See the module docstring."""
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size < 2 or neg.size < 1:
        raise ValueError(f"a gate needs at least 2 held-out positive and 1 negative scores, got {pos.size} and "
                         f"{neg.size}")
    if not (np.isfinite(pos).all() and np.isfinite(neg).all()):
        raise ValueError("gate calibration scores must be finite")
    if tail_sd < 0 or max_width <= 0:
        raise ValueError(f"tail_sd must be >= 0 and max_width > 0, got {tail_sd} and {max_width}")
    center = float(np.median(pos)) if center is None else float(center)
    scale = float(pos.std(ddof=1)) if scale is None else float(scale)
    scale = max(scale, 1e-6 * (1.0 + abs(center)))
    partial = GateCalibration(center, scale, 0.0, 1.0, 0.0, 0.0, True, int(pos.size), int(neg.size))
    zp, zn = partial.normalise(pos), partial.normalise(neg)
    high = float(zp.mean() - tail_sd * max(zp.std(ddof=1), MIN_SPREAD))
    low = float(zn.max())
    separable = low < high
    if separable:
        middle, half = 0.5 * (low + high), 0.5 * min(high - low, max_width)
    else:
        middle, half = _youden_threshold(zp, zn), OVERLAP_HALF_WIDTH
    return GateCalibration(center, scale, threshold=middle, temperature=half / K, open_at=middle + half,
                           closed_at=middle - half, separable=separable, n_positive=int(pos.size),
                           n_negative=int(neg.size))


def _youden_threshold(zp: np.ndarray, zn: np.ndarray) -> float:
    """The cut between two consecutive calibration scores that maximises TPR − FPR (ties: the lowest cut)."""
    values = np.unique(np.r_[zp, zn])
    cuts = np.r_[values[0] - 1.0, 0.5 * (values[1:] + values[:-1]), values[-1] + 1.0]
    best = max(cuts, key=lambda c: (np.mean(zp >= c) - np.mean(zn >= c), -c))
    return float(best)


def gate_summary(weights) -> dict:
    """What a report says about a gate on a set of inputs: quantiles, mean, and the fractions open (≥ 0.9) and
    closed (≤ 0.05). A mean or an AUROC alone hides a gate that is half open for many inputs."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    w = w[np.isfinite(w)]  # cross_validated_weights leaves NaN where a fold could not be fitted
    if w.size == 0:
        return {"n": 0}
    q = np.quantile(w, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    return {"n": int(w.size), "mean": float(w.mean()),
            "quantiles": {k: float(v) for k, v in zip(("min", "q05", "q25", "median", "q75", "q95", "max"), q)},
            "frac_open": float(np.mean(w >= OPEN)), "frac_closed": float(np.mean(w <= CLOSED))}


def auroc(positives, negatives) -> float | None:
    """P(score of a positive > score of a negative), ties counted half; None without both kinds. A ranking
    measure: report it beside gate_summary, not instead of it."""
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def cross_validated_weights(positives, negatives, folds: int = 5, seed: int = 0, **fit_kwargs) -> tuple[
        np.ndarray, np.ndarray]:
    """Out-of-fold gate weights of every calibration input: each fold's inputs are weighed by a gate fitted on the
    other folds (k-fold over both sets together). What the final gate (fitted on everything) will do on new inputs
    of the same distributions, estimated without scoring inputs it was fitted on. Fewer than 2 positives left to
    fit a fold: that fold is skipped (NaN)."""
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    rng = np.random.default_rng(seed)
    pos_fold = rng.permutation(np.arange(pos.size) % folds)
    neg_fold = rng.permutation(np.arange(neg.size) % folds)
    wp, wn = np.full(pos.size, np.nan), np.full(neg.size, np.nan)
    for k in range(folds):
        train_pos, train_neg = pos[pos_fold != k], neg[neg_fold != k]
        if train_pos.size < 2 or train_neg.size < 1:
            continue
        gate = fit_gate(train_pos, train_neg, **fit_kwargs)
        wp[pos_fold == k] = gate.weights(pos[pos_fold == k])
        wn[neg_fold == k] = gate.weights(neg[neg_fold == k])
    return wp, wn



# ---------------------------------------------------------------------------------------------------- routing

ROUTE_CONFIDENCE = 0.9  # top probability from which an input goes to one expert alone


@dataclass
class Router:
    """Which expert(s) serve an input: (n, experts) raw scores -> (n, experts) weights.

    Each expert's score (higher = more like that expert's inputs) is put in that expert's units with its
    GateCalibration's anchor, z = (x − c)/s (one unit = one spread of the expert's own held-out scores, so z is
    comparable across experts; linear, not the gate's asinh: routing scores are bounded similarities without a
    long tail, and compressing "far from expert j" would make the router unsure between a near and a far expert),
    then p = softmax(z / temperature). An input whose top p reaches `confidence` goes to
    that expert alone: weight exactly 1 there and exactly 0 elsewhere, so it gets that expert's own output (top-1);
    any other input gets the mix p (the router is unsure: a soft mix of the experts' deltas)."""

    calibrations: list[GateCalibration]
    temperature: float = 1.0
    confidence: float = ROUTE_CONFIDENCE

    def normalise(self, scores) -> np.ndarray:
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        if scores.shape[1] != len(self.calibrations):
            raise ValueError(f"router has {len(self.calibrations)} experts, scores have {scores.shape[1]} columns")
        return np.stack([(scores[:, k] - c.center) / c.scale for k, c in enumerate(self.calibrations)], axis=1)

    def probabilities(self, scores) -> np.ndarray:
        z = self.normalise(scores) / self.temperature
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def weights(self, scores) -> np.ndarray:
        p = self.probabilities(scores)
        top = p.argmax(axis=1)
        sure = p[np.arange(len(p)), top] >= self.confidence
        one_hot = np.zeros_like(p)
        one_hot[np.arange(len(p)), top] = 1.0
        return np.where(sure[:, None], one_hot, p)

    def to_dict(self) -> dict:
        return {"calibrations": [c.to_dict() for c in self.calibrations], "temperature": self.temperature,
                "confidence": self.confidence}

    @classmethod
    def from_dict(cls, data: dict) -> "Router":
        return cls([GateCalibration.from_dict(c) for c in data["calibrations"]], float(data["temperature"]),
                   float(data["confidence"]))


def fit_router(held_out_scores, confidence: float = ROUTE_CONFIDENCE, temperature: float = 1.0,
               **fit_kwargs) -> Router:
    """A router from held-out scores: held_out_scores[k] is (n_k, experts), every expert's score of expert k's
    held-out inputs (inputs its score was not fitted on). Expert j's calibration is fit_gate with j's own inputs as
    positives and every other expert's inputs as negatives, so j's z is anchored on the spread of its own inputs."""
    blocks = [np.atleast_2d(np.asarray(b, dtype=np.float64)) for b in held_out_scores]
    experts = len(blocks)
    if experts < 2 or any(b.shape[1] != experts for b in blocks):
        raise ValueError(f"a router needs (n_k, {experts}) held-out scores for each of at least 2 experts")
    calibrations = []
    for j in range(experts):
        negatives = np.concatenate([blocks[k][:, j] for k in range(experts) if k != j])
        calibrations.append(fit_gate(blocks[j][:, j], negatives, **fit_kwargs))
    return Router(calibrations, temperature, confidence)


def routing_summary(weights) -> dict:
    """What a report says about routing weights (n, experts): how many inputs each expert served as top-1, and the
    share routed to one expert alone (the rest got a soft mix)."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.size == 0:
        return {"n": 0}
    top = w.argmax(axis=1)
    return {"n": int(len(w)), "top1_counts": [int((top == k).sum()) for k in range(w.shape[1])],
            "frac_single_expert": float(np.mean(w.max(axis=1) >= 1.0)),
            "mean_top_weight": float(w.max(axis=1).mean())}
