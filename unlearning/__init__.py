"""O3: continual unlearning with an orthogonal LoRA and an OOD-gated soft load (shared/design/methods.md, O3).

    result = unlearn(task_adapter_or_state, model, tokenizer, forget_pairs, UnlearnConfig(relabel="refusal"),
                     progress=None, base_name=None, reference_inputs=None)
    result.merged_adapter   # plain PEFT adapter, ΔW = ΔW_task + ΔW_unlearn (what un-gated loaders get)
    result.state            # O3State: task adapter, unlearning LoRA, A history, detectors (to_files / from_files)
    result.report           # loss curves, ‖A_k A_tᵀ‖, detector AUROC, gate calibration, seconds per stage
    result.files()          # every file of the new version: primary adapter + o3/...

    completions, weights = gated_generate(model, tokenizer, O3State.from_files(files), prompts, gate="auto")
    gated_evaluate(model, tokenizer, state, examples, gate="auto")   # exact match, gated

A second request on result.state continues the sequence. PRIVACY: an O3 state's detectors hold encoder features of
the forget sets (unlearning/detector.py); its files need the forget data's access rules.
"""
from unlearning.config import UnlearnConfig
from unlearning.detector import Detector
from unlearning.gate import soft_weight
from unlearning.inference import (detector_weights, gate_weights, gated_evaluate, gated_generate, o3_applied,
                                  unlearn_delta_scale)
from unlearning.relabel import REFUSALS, relabel
from unlearning.request import UnlearnResult, split_forget, unlearn
from unlearning.state import O3State

__all__ = [
    "REFUSALS",
    "Detector",
    "O3State",
    "UnlearnConfig",
    "UnlearnResult",
    "detector_weights",
    "gate_weights",
    "gated_evaluate",
    "gated_generate",
    "o3_applied",
    "relabel",
    "soft_weight",
    "split_forget",
    "unlearn",
    "unlearn_delta_scale",
]
