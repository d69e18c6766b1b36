"""O3's OOD detector (methods.md O3 step 2): how much does an input look like one forget set?

Training, on the "used" 80 % of the forget prompts only (the rest calibrates the gate, unlearning/gate.py):
  a LoRA on the sentence encoder (lora/encoder.py), loss = masked-LM on `mask_prob` of the tokens (every chosen
  token becomes [MASK]) + the contrastive entropy loss: for every transformer layer l, z^q = mean-pooled layer-l
  states of the trainable encoder on the masked batch, z^k = the same from the frozen encoder (LoRA disabled) on the
  unmasked batch, L_CEL = Σ_l mean_i H(softmax_j(z^q_i · z^k_j)), in float32.

Scoring ("glocal"), oriented so that HIGHER = MORE LIKE THE FORGET SET throughout:
  per layer l, with f the mean-pooled layer-l state of the trained encoder on the unmasked input,
      S_l(x) = −½ (f − μ_l)ᵀ Σ_l⁻¹ (f − μ_l) + γ · max_j cos(f, bank_l[j])
  μ_l, Σ_l fitted on the used split (Ledoit-Wolf shrinkage: a few dozen points in 384 dimensions give a singular
  sample covariance), bank_l = the used split's features. methods.md writes "minus γ·max cosine": that sign reads the
  Mahalanobis term as a distance (higher = further away); with the signed score above, whose higher values mean
  closer, the cosine similarity must be added, or the two terms would pull against each other.
  The layer scores then go to a linear one-class SVM (ν from the config) fitted on the used split. A linear OCSVM
  separates its training points from the ORIGIN, so the origin must stand for "not forget-like": each layer score is
  put in used-split standard units and shifted by ORIGIN_SD, u_l = (S_l − mean_l)/std_l + ORIGIN_SD, i.e. the origin
  is an input ORIGIN_SD standard deviations less forget-like than the used split's mean on every layer. The SVM's
  weight vector is a non-negative combination of used-split points, which sit in the positive orthant (bar
  outliers), so the detector's score, its decision function coef·u + intercept (positive inside the forget set's
  region), rises with every layer's score. Fed raw (negative) Mahalanobis scores instead, the OCSVM would rank
  far-away inputs as the most typical ones.
  Scale: on the raw scale the Mahalanobis term dominates (a few units on the used split, thousands for held-out or
  unrelated inputs with a few dozen used points in 384 dimensions), the cosine term is at most γ, so γ matters near
  the used split. Held-out forget prompts score far below the used ones (m2 ≪ m1); the gate's two-mode F is built
  for exactly that gap.

Gate. The score becomes a weight through the calibrated gate (lora/gating.py; `calibrate` fits it on the rest
split, which the detector never trained on, against reference inputs, see unlearning/reference.py) or, for the
ablation and for detectors stored before it existed, the paper's soft weight (unlearning/gate.py).

Everything needed to score again is plain tensors and numbers (no sklearn object), stored with safetensors + JSON.
PRIVACY: a detector holds features of its forget set (the feature bank is one 384-d vector per used example and layer,
and the Mahalanobis means are averages of them); features of an encoder can leak the text they came from. Whoever
may download an O3 version may read these; treat the o3/ files with the forget set's own access rules.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
from peft import LoraConfig

from lora import Adapter
from lora.progress import Progress
from lora.wrapping import wrapped
from unlearning.config import UnlearnConfig
from lora.encoder import ENCODER_NAME, TiedMLMHead, keep_rng, layer_means, load_encoder, tokenize
from lora.gating import GateCalibration, fit_gate
from unlearning.gate import calibration, soft_weight

ORIGIN_SD = 3.0  # where the OCSVM's origin sits, in used-split standard deviations below the used mean (see above)
SCORE_BATCH = 32
FORMAT = "o3-glocal-ocsvm/1"


@dataclass
class Detector:
    """One request's detector: encoder LoRA + glocal statistics + OCSVM + gate calibration."""

    encoder_lora: Adapter
    mean: torch.Tensor  # (layers, dim) float32: μ_l
    precision: torch.Tensor  # (layers, dim, dim) float32: Σ_l⁻¹ (Ledoit-Wolf)
    bank: torch.Tensor  # (layers, n_used, dim) float32: unit-norm used-split features (the cosine term)
    center: torch.Tensor  # (layers,) float64: mean of S_l on the used split
    scale: torch.Tensor  # (layers,) float64: std of S_l on the used split
    svm_coef: torch.Tensor  # (layers,) float64: the linear OCSVM's coef_
    svm_intercept: float  # its intercept_ (decision = coef·u + intercept)
    m1: float
    m2: float
    s: float
    gamma: float
    zeta: float
    one_sided_gate: bool = True
    origin_sd: float = ORIGIN_SD
    max_len: int = 128
    n_used: int = 0
    n_rest: int = 0
    # which gate weighs this detector's scores: "calibrated" (lora.gating, fitted by `calibrate`) or "paper" (the
    # soft weight from m1, m2, s). Detectors stored before the calibrated gate existed read back as "paper".
    gate: str = "paper"
    calibration: GateCalibration | None = None

    # ---------------------------------------------------------------- scoring

    @torch.no_grad()
    def features(self, texts: list[str]) -> torch.Tensor:
        """(layers, n, dim) float32 mean-pooled states of the encoder with this detector's LoRA."""
        model, tokenizer = load_encoder()
        config = self.encoder_lora.lora_config()
        config.inference_mode = True
        # fork_rng: PEFT draws a random LoRA init before our weights overwrite it; keep the caller's stream intact
        with keep_rng(model), wrapped(model, config, self.encoder_lora) as peft_model:
            return _features(peft_model, tokenizer, texts, self.max_len)

    def layer_scores(self, feats: torch.Tensor) -> np.ndarray:
        """(layers, n) float64 glocal scores S_l (higher = more forget-like)."""
        f = feats.double()
        diff = f - self.mean.double()[:, None, :]
        maha = -0.5 * torch.einsum("lnd,lde,lne->ln", diff, self.precision.double(), diff)
        unit = torch.nn.functional.normalize(f, dim=-1)
        cos = torch.einsum("lnd,lmd->lnm", unit, self.bank.double()).amax(dim=-1)
        return (maha + self.gamma * cos).numpy()

    def scores_from_features(self, feats: torch.Tensor) -> np.ndarray:
        """(n,) detector scores: the OCSVM decision on the standardised, shifted layer scores."""
        u = (self.layer_scores(feats) - self.center.numpy()[:, None]) / self.scale.numpy()[:, None] + self.origin_sd
        return self.svm_coef.numpy() @ u + self.svm_intercept

    def scores(self, texts: list[str]) -> np.ndarray:
        return self.scores_from_features(self.features(texts))

    def weights_from_scores(self, scores, gate: str | None = None) -> np.ndarray:
        """w(x) per score under this detector's gate, or under `gate` ("calibrated" / "paper") for ablations."""
        gate = gate or self.gate
        if gate == "calibrated":
            if self.calibration is None:
                raise ValueError("this detector has no calibrated gate (an O3 state made before it existed)")
            return self.calibration.weights(scores)
        if gate != "paper":
            raise ValueError(f"unknown gate {gate!r}")
        return np.array([soft_weight(float(x), self.m1, self.m2, self.s, self.zeta, self.one_sided_gate)
                         for x in scores])

    def weights(self, texts: list[str]) -> np.ndarray:
        """The soft weight w(x) of each text under this detector alone."""
        return self.weights_from_scores(self.scores(texts))

    # ---------------------------------------------------------------- files (safetensors + JSON, no pickle)

    def to_files(self, prefix: str) -> dict[str, bytes]:
        from safetensors.torch import save

        config_json, weights = self.encoder_lora.to_bytes()
        stats = {"mean": self.mean, "precision": self.precision, "bank": self.bank, "center": self.center,
                 "scale": self.scale, "svm_coef": self.svm_coef}
        meta = {"format": FORMAT, "encoder": ENCODER_NAME, "svm_intercept": self.svm_intercept, "m1": self.m1,
                "m2": self.m2, "s": self.s, "gamma": self.gamma, "zeta": self.zeta,
                "one_sided_gate": self.one_sided_gate, "origin_sd": self.origin_sd, "max_len": self.max_len,
                "n_used": self.n_used, "n_rest": self.n_rest, "gate": self.gate,
                "calibration": self.calibration.to_dict() if self.calibration is not None else None}
        return {
            f"{prefix}encoder/adapter_config.json": config_json,
            f"{prefix}encoder/adapter_model.safetensors": weights,
            f"{prefix}statistics.safetensors": save({k: v.contiguous() for k, v in stats.items()},
                                                     metadata={"format": "pt"}),
            f"{prefix}detector.json": json.dumps(meta, indent=2, sort_keys=True).encode(),
        }

    @classmethod
    def from_files(cls, files: dict[str, bytes], prefix: str) -> "Detector":
        from safetensors.torch import load

        meta = json.loads(files[f"{prefix}detector.json"])
        if meta.get("format") != FORMAT:
            raise ValueError(f"{prefix}detector.json: unknown detector format {meta.get('format')!r}")
        stats = load(files[f"{prefix}statistics.safetensors"])
        encoder = Adapter.from_bytes(files[f"{prefix}encoder/adapter_config.json"],
                                     files[f"{prefix}encoder/adapter_model.safetensors"])
        return cls(encoder_lora=encoder, mean=stats["mean"], precision=stats["precision"], bank=stats["bank"],
                   center=stats["center"], scale=stats["scale"], svm_coef=stats["svm_coef"],
                   svm_intercept=float(meta["svm_intercept"]), m1=float(meta["m1"]), m2=float(meta["m2"]),
                   s=float(meta["s"]), gamma=float(meta["gamma"]), zeta=float(meta["zeta"]),
                   one_sided_gate=bool(meta["one_sided_gate"]), origin_sd=float(meta["origin_sd"]),
                   max_len=int(meta["max_len"]), n_used=int(meta["n_used"]), n_rest=int(meta["n_rest"]),
                   gate=str(meta.get("gate", "paper")),
                   calibration=GateCalibration.from_dict(meta["calibration"]) if meta.get("calibration") else None)


def _features(peft_model, tokenizer, texts: list[str], max_len: int) -> torch.Tensor:
    device = next(peft_model.parameters()).device
    chunks = []
    for start in range(0, len(texts), SCORE_BATCH):
        enc = tokenize(tokenizer, texts[start:start + SCORE_BATCH], max_len, device)
        out = peft_model(**enc, output_hidden_states=True)
        chunks.append(layer_means(out, enc["attention_mask"]).cpu())
    return torch.cat(chunks, dim=1)


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                prob: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, MLM labels): each real, non-special token is replaced by [MASK] with probability `prob`
    (at least one per row, so every row has an MLM target); labels are -100 elsewhere."""
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids))
    chosen = (torch.rand(input_ids.shape, generator=generator) < prob) & candidates
    for row in range(input_ids.shape[0]):
        if not chosen[row].any() and candidates[row].any():
            positions = candidates[row].nonzero().flatten()
            pick = torch.randint(len(positions), (1,), generator=generator)
            chosen[row, positions[pick]] = True
    masked = input_ids.masked_fill(chosen, mask_id)
    labels = input_ids.masked_fill(~chosen, -100)
    return masked, labels


def contrastive_entropy(zq: torch.Tensor, zk: torch.Tensor) -> torch.Tensor:
    """Σ_l mean_i H(softmax_j(z^q_i · z^k_j)) for (layers, batch, dim) inputs, in float32."""
    logits = zq.float() @ zk.float().transpose(1, 2)
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(dim=-1)  # (layers, batch)
    return entropy.mean(dim=1).sum()


def _ocsvm(u_used: np.ndarray, nu: float) -> tuple[np.ndarray, float]:
    """Linear one-class SVM on (n, layers) points; returns (coef, intercept) of decision = coef·u + intercept."""
    from sklearn.svm import OneClassSVM

    svm = OneClassSVM(kernel="linear", nu=nu).fit(u_used)
    return np.array(svm.coef_, dtype=np.float64).reshape(-1), float(svm.intercept_[0])


def fit_detector(encoder_lora: Adapter, used: torch.Tensor, rest: torch.Tensor, config: UnlearnConfig) -> Detector:
    """Glocal statistics, OCSVM and gate calibration from the used / rest features ((layers, n, dim) each)."""
    from sklearn.covariance import LedoitWolf

    layers = used.shape[0]
    means, precisions = [], []
    for layer in range(layers):
        lw = LedoitWolf(store_precision=False).fit(used[layer].double().numpy())
        means.append(torch.from_numpy(lw.location_).float())
        # the shrunk covariance is positive definite: a plain inverse (Cholesky-fast) instead of sklearn's pinvh
        precisions.append(torch.linalg.inv(torch.from_numpy(lw.covariance_)).float())
    detector = Detector(
        encoder_lora=encoder_lora, mean=torch.stack(means), precision=torch.stack(precisions),
        bank=torch.nn.functional.normalize(used.float(), dim=-1).contiguous(),
        center=torch.zeros(layers, dtype=torch.float64), scale=torch.ones(layers, dtype=torch.float64),
        svm_coef=torch.zeros(layers, dtype=torch.float64), svm_intercept=0.0, m1=0.0, m2=0.0, s=1.0,
        gamma=float(config.gamma), zeta=float(config.zeta), one_sided_gate=bool(config.one_sided_gate),
        max_len=config.detector_max_len, n_used=used.shape[1], n_rest=rest.shape[1])
    raw = detector.layer_scores(used)  # (layers, n_used)
    detector.center = torch.from_numpy(raw.mean(axis=1))
    detector.scale = torch.from_numpy(np.maximum(raw.std(axis=1), 1e-6 * (1.0 + np.abs(raw.mean(axis=1)))))
    u = (raw - detector.center.numpy()[:, None]) / detector.scale.numpy()[:, None] + detector.origin_sd
    coef, intercept = _ocsvm(u.T, config.nu)
    detector.svm_coef, detector.svm_intercept = torch.from_numpy(coef), intercept
    # calibrate with the stored statistics themselves, so a detector read back from files scores identically
    detector.m1, detector.m2, detector.s = calibration(detector.scores_from_features(used).tolist(),
                                                       detector.scores_from_features(rest).tolist())
    return detector


def fit_calibration(used_scores, held_out_scores, negative_scores, config: UnlearnConfig) -> GateCalibration:
    """The calibrated gate for one detector, fitted on scores of held-out forget inputs (never the used split it
    trained on) and of negatives (reference inputs). The used split's scores only anchor the normalisation (their
    mean and std: four times as many points as the held-out ones)."""
    used = np.asarray(used_scores, dtype=np.float64)
    return fit_gate(held_out_scores, negative_scores, tail_sd=config.gate_tail_sd, max_width=config.gate_max_width,
                    center=float(used.mean()), scale=float(used.std(ddof=1)) if used.size > 1 else None)


def calibrate(detector: Detector, used_scores, held_out_scores, negative_scores,
              config: UnlearnConfig) -> GateCalibration:
    """fit_calibration, stored on the detector, whose gate becomes config.gate (the calibration is kept with the
    paper gate too, for the report's ablation)."""
    detector.calibration = fit_calibration(used_scores, held_out_scores, negative_scores, config)
    detector.gate = config.gate
    return detector.calibration


def train_detector(used_texts: list[str], rest_texts: list[str], config: UnlearnConfig,
                   progress: Progress | None = None) -> tuple[Detector, dict]:
    """Train request t's detector on `used_texts`, calibrate its gate on `rest_texts`; (detector, report).

    progress("detector", step, detector_steps, {"loss", "mlm_loss", "cel_loss"}) after each step; a Cancelled raised
    there propagates and the encoder is left without the LoRA."""
    model, tokenizer = load_encoder()
    device = next(model.parameters()).device
    lora_config = LoraConfig(r=config.detector_rank, lora_alpha=config.detector_alpha,
                             target_modules=list(config.detector_target_modules), lora_dropout=0.0,
                             base_model_name_or_path=ENCODER_NAME)
    special = [i for i in tokenizer.all_special_ids if i is not None]
    sampler = random.Random(f"detector|{config.seed}")
    masks = torch.Generator().manual_seed(config.seed)
    batch = min(config.detector_batch_size, len(used_texts))
    mlm_losses, cel_losses = [], []
    start = time.perf_counter()
    with keep_rng(model):
        torch.manual_seed(config.seed)  # the LoRA's A init
        with wrapped(model, lora_config) as peft_model:
            head = TiedMLMHead(model.get_input_embeddings()).to(device)
            params = [p for p in peft_model.parameters() if p.requires_grad] + head.trainable()
            optimizer = torch.optim.AdamW(params, lr=config.detector_lr, weight_decay=0.0)
            for step in range(1, config.detector_steps + 1):
                texts = [used_texts[i] for i in sampler.sample(range(len(used_texts)), batch)]
                enc = tokenize(tokenizer, texts, config.detector_max_len, device)
                masked, labels = mask_tokens(enc["input_ids"].cpu(), enc["attention_mask"].cpu(), special,
                                             tokenizer.mask_token_id, config.mask_prob, masks)
                masked, labels = masked.to(device), labels.to(device)
                out_q = peft_model(**{**enc, "input_ids": masked}, output_hidden_states=True)
                picked = labels != -100
                mlm = torch.nn.functional.cross_entropy(head(out_q.last_hidden_state[picked]), labels[picked])
                with torch.no_grad(), peft_model.disable_adapter():
                    out_k = peft_model(**enc, output_hidden_states=True)
                cel = contrastive_entropy(layer_means(out_q, enc["attention_mask"]),
                                          layer_means(out_k, enc["attention_mask"]))
                loss = mlm + cel
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                mlm_losses.append(mlm.item())
                cel_losses.append(cel.item())
                if progress is not None:
                    progress("detector", step, config.detector_steps,
                             {"loss": loss.item(), "mlm_loss": mlm.item(), "cel_loss": cel.item()})
            encoder_lora = Adapter.from_peft_model(peft_model)
            with torch.no_grad():
                used = _features(peft_model, tokenizer, used_texts, config.detector_max_len)
                rest = _features(peft_model, tokenizer, rest_texts, config.detector_max_len)
    trained = time.perf_counter() - start
    detector = fit_detector(encoder_lora, used, rest, config)
    report = {"mlm_losses": mlm_losses, "cel_losses": cel_losses, "n_used": len(used_texts),
              "n_rest": len(rest_texts), "m1": detector.m1, "m2": detector.m2, "s": detector.s,
              "train_s": trained, "fit_s": time.perf_counter() - start - trained}
    return detector, report
