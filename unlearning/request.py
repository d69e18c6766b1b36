"""One O3 unlearning request, end to end: relabel → orthogonal unlearning LoRA → detector → new state + merged adapter.

A first request starts from a task adapter; a later one from the O3 state an earlier request produced, and
continues the sequence: the unlearning LoRA resumes from its last weights, the orthogonality term covers the A
matrices of every earlier request, and the new detector joins the earlier ones (the gate takes their max).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np

from lora import Adapter
from lora.progress import Progress
from lora.training import TrainConfig, train_lora
from unlearning.config import UnlearnConfig
from lora.gating import auroc, cross_validated_weights, gate_summary
from unlearning.detector import Detector, calibrate, fit_calibration, train_detector
from unlearning.reference import GENERIC_PROMPTS, builtin_prompts, builtin_reference
from unlearning.orthogonal import (a_matrices, concatenate, live_a_matrices, orthogonality_loss, overlap_norms,
                                   task_merged)
from unlearning.relabelling import as_example, relabel
from unlearning.state import O3State


@dataclass
class UnlearnResult:
    state: O3State  # for gated inference and the next request (to_files() -> the o3/ files)
    merged_adapter: Adapter  # plain PEFT adapter: ΔW_task + ΔW_unlearn at full weight (the version's primary files)
    report: dict  # JSON-friendly: loss curves, A-overlaps, detector AUROC and calibration, seconds per stage

    def files(self) -> dict[str, bytes]:
        """Every file of the resulting adapter version: the primary PEFT adapter plus the o3/ state."""
        config_json, weights = self.merged_adapter.to_bytes()
        return {"adapter_config.json": config_json, "adapter_model.safetensors": weights, **self.state.to_files()}


def split_forget(n: int, config: UnlearnConfig) -> tuple[list[int], list[int]]:
    """Seeded 80/20 (used_fraction) split of example indices into (used, rest); both sides need two examples."""
    if n < config.min_forget_examples:
        raise ValueError(f"the forget set has {n} examples; O3 needs at least min_forget_examples="
                         f"{config.min_forget_examples} (the detector's {config.used_fraction:.0%} / "
                         f"{1 - config.used_fraction:.0%} split needs enough on both sides)")
    order = list(range(n))
    random.Random(f"split|{config.seed}").shuffle(order)
    n_used = int(round(n * config.used_fraction))
    if n_used < 2 or n - n_used < 2:
        raise ValueError(f"used_fraction={config.used_fraction} splits {n} forget examples into {n_used} used and "
                         f"{n - n_used} rest; each side needs at least 2")
    return sorted(order[:n_used]), sorted(order[n_used:])


def _negatives(detector: Detector, reference_inputs: list[str] | None, used_scores: np.ndarray,
               rest_scores: np.ndarray, config: UnlearnConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Scores of the inputs the new gate must keep shut, by source, and what was used (unlearning/reference.py)."""
    sources: dict[str, np.ndarray] = {}
    used = {"caller": len(reference_inputs or []), "generic": 0, "builtin_tasks": [], "builtin_left_out": []}
    if reference_inputs:
        sources["caller"] = detector.scores(list(reference_inputs))
    if config.builtin_reference:
        sources["generic"] = detector.scores(GENERIC_PROMPTS)
        used["generic"] = len(GENERIC_PROMPTS)
        by_task = builtin_prompts()
        flat = detector.scores([p for prompts in by_task.values() for p in prompts])
        scores, start = {}, 0
        for name, prompts in by_task.items():
            scores[name], start = flat[start:start + len(prompts)], start + len(prompts)
        prelim = fit_calibration(used_scores, rest_scores, np.concatenate(list(sources.values())), config)
        kept, left_out = builtin_reference({name: prelim.weights(v) for name, v in scores.items()})
        for name in kept:
            sources[f"builtin:{name}"] = scores[name]
        used["builtin_tasks"], used["builtin_left_out"] = kept, left_out
    if not sources:
        raise ValueError("the calibrated gate needs reference inputs: pass reference_inputs or keep "
                         "builtin_reference on")
    return sources, used


def _gate_report(detector: Detector, rest_scores: np.ndarray, negatives: dict[str, np.ndarray],
                 config: UnlearnConfig) -> dict:
    """The new detector's gate, as the issue asks a report to show it: the calibration, the weight distribution on
    held-out forget inputs and on reference inputs (out-of-fold: each input weighed by a gate fitted without it;
    and in-sample), the fractions open (≥ 0.9) and closed (≤ 0.05), AUROC beside them, and the paper gate's
    distribution on the same inputs (the ablation)."""
    all_negative = np.concatenate(list(negatives.values()))
    anchor = detector.calibration
    cv_pos, cv_neg = cross_validated_weights(rest_scores, all_negative, seed=config.seed,
                                             tail_sd=config.gate_tail_sd, max_width=config.gate_max_width,
                                             center=anchor.center, scale=anchor.scale)
    caller = negatives.get("caller")
    return {
        "gate": config.gate,
        "calibration": detector.calibration.to_dict(),
        "held_out_forget": {"cross_validated": gate_summary(cv_pos),
                            "in_sample": gate_summary(detector.weights_from_scores(rest_scores, "calibrated"))},
        "reference": {"cross_validated": gate_summary(cv_neg),
                      "in_sample": gate_summary(detector.weights_from_scores(all_negative, "calibrated"))},
        "reference_by_source": {name: gate_summary(detector.weights_from_scores(scores, "calibrated"))
                                for name, scores in negatives.items()},
        # AUROC of the held-out forget inputs against the caller's reference (the retained data) when given,
        # else against every negative
        "auroc": auroc(rest_scores, caller if caller is not None else all_negative),
        "paper_gate": {"held_out_forget": gate_summary(detector.weights_from_scores(rest_scores, "paper")),
                       "reference": gate_summary(detector.weights_from_scores(all_negative, "paper"))},
    }


def unlearn(task_adapter_or_state: Adapter | O3State, model, tokenizer, forget_pairs, config: UnlearnConfig | None = None,
            progress: Progress | None = None, base_name: str | None = None,
            reference_inputs: list[str] | None = None) -> UnlearnResult:
    """Run one O3 unlearning request.

    - task_adapter_or_state: the deployed task adapter (first request) or an earlier request's O3State.
    - model, tokenizer: the base the task adapter belongs to (left exactly as it was, also on errors).
    - forget_pairs: (prompt, completion) pairs or dicts {"prompt", "completion"[, "options"]}; at least
      config.min_forget_examples of them. The detector sees the prompts (at inference only the input is known).
    - reference_inputs: optional prompts from elsewhere (retained or general data): negatives of the calibrated
      gate (with the generic and built-in prompts of unlearning/reference.py unless builtin_reference is off), and
      the negatives of the report's AUROC. The unlearning LoRA and the detector's training never see them.
    - progress: "unlearning" steps {"loss" (CE on the relabelled forget data), "orth_loss" (L_orth before the λ
      weight, so a λ = 0 run still shows the overlap), "lr"}, then "detector" steps {"loss", "mlm_loss",
      "cel_loss"}, then "scoring" {"auroc"}. Raise lora.progress.Cancelled in it to
      stop; it propagates and the base and the encoder are left unwrapped.
    A later request keeps the unlearning LoRA it resumes (its rank, alpha and target modules win over the config's).
    """
    config = config or UnlearnConfig()
    examples = [as_example(item, i) for i, item in enumerate(forget_pairs)]
    used_idx, rest_idx = split_forget(len(examples), config)
    if isinstance(task_adapter_or_state, O3State):
        previous = task_adapter_or_state
        task, init, earlier = previous.task, previous.unlearn, list(previous.a_history)
    elif isinstance(task_adapter_or_state, Adapter):
        previous, task, init, earlier = None, task_adapter_or_state, None, []
    else:
        raise ValueError("unlearn needs a task Adapter or an O3State from an earlier request, "
                         f"got {type(task_adapter_or_state).__name__}")
    pairs = relabel(examples, config.relabel, config.seed, config.options)
    base_name = base_name or task.base_model
    seconds: dict[str, float] = {}
    start = time.perf_counter()

    # ---- 1. the orthogonal unlearning LoRA, trained on top of the task adapter
    orth_losses: list[float] = []

    def orth_term(peft_model):
        term = orthogonality_loss(live_a_matrices(peft_model), earlier)
        orth_losses.append(term.item())
        return config.lambda_orth * term

    def forward_progress(stage, done, total, metrics=None):
        if progress is not None:
            progress("unlearning", done, total, {**(metrics or {}), "orth_loss": orth_losses[-1]})

    train_config = TrainConfig(rank=config.rank, lora_alpha=config.lora_alpha,
                               target_modules=tuple(config.target_modules), lr=config.lr, steps=config.steps,
                               batch_size=config.batch_size, max_len=config.max_len, seed=config.seed)
    with task_merged(model, task):
        trained = train_lora(model, tokenizer, pairs, train_config, progress=forward_progress, init=init,
                             extra_loss=orth_term, base_name=base_name)
    unlearn_adapter = trained.adapter
    a_now = a_matrices(unlearn_adapter)
    seconds["unlearning"] = time.perf_counter() - start

    # ---- 2. this request's detector, on the forget prompts only
    stage = time.perf_counter()
    used_texts = [examples[i]["prompt"] for i in used_idx]
    rest_texts = [examples[i]["prompt"] for i in rest_idx]
    detector, detector_report = train_detector(used_texts, rest_texts, config, progress)
    seconds["detector"] = time.perf_counter() - stage

    stage = time.perf_counter()
    rest_scores = detector.scores(rest_texts)
    used_scores = detector.scores(used_texts)
    negatives, sources = _negatives(detector, reference_inputs, used_scores, rest_scores, config)
    calibrate(detector, used_scores, rest_scores, np.concatenate(list(negatives.values())), config)
    gate = _gate_report(detector, rest_scores, negatives, config)
    gate["sources"] = sources
    detector_report["gate"] = gate
    detector_report["auroc"] = gate["auroc"] if reference_inputs else None
    detector_report["n_reference"] = len(reference_inputs or [])
    detector_report["rest_weight_mean"] = float(detector.weights_from_scores(rest_scores).mean())
    if reference_inputs:
        detector_report["reference_weight_mean"] = float(detector.weights_from_scores(negatives["caller"]).mean())
    if progress is not None:
        progress("scoring", 1, 1, {"auroc": gate["auroc"]})
    seconds["scoring"] = time.perf_counter() - stage

    # ---- 3. the new state and the one-adapter form
    t = len(earlier)
    summary = {"request": t, "n_forget": len(examples), "n_used": len(used_idx), "n_rest": len(rest_idx),
               "config": config.model_dump(), "final_loss": trained.losses[-1], "final_orth_loss": orth_losses[-1],
               "auroc": detector_report["auroc"], "m1": detector.m1, "m2": detector.m2, "s": detector.s,
               "gate": config.gate, "calibration": detector.calibration.to_dict()}
    state = O3State(task=task, unlearn=unlearn_adapter, a_history=[*earlier, a_now],
                    detectors=[*(previous.detectors if previous else []), detector],
                    requests=[*(previous.requests if previous else []), summary])
    merged = concatenate(task, unlearn_adapter, base_name)
    seconds["total"] = time.perf_counter() - start
    report = {
        "request": t,
        "n_requests": t + 1,
        "resumed": init is not None,
        "n_forget": len(examples),
        "relabel": config.relabel,
        "lambda_orth": config.lambda_orth,
        "unlearn_rank": unlearn_adapter.config["r"],
        "losses": list(trained.losses),
        "orth_losses": orth_losses,
        "overlap": overlap_norms(a_now, earlier),
        "detector": detector_report,
        "seconds": seconds,
    }
    return UnlearnResult(state=state, merged_adapter=merged, report=report)
