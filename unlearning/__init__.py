"""O3: continual unlearning with an orthogonal LoRA and an OOD-gated soft load (shared/design/methods.md, O3).

    result = unlearn(task_adapter_or_state, model, tokenizer, forget_pairs, UnlearnConfig(relabel="refusal"),
                     progress=None, base_name=None, reference_inputs=None)
    result.merged_adapter   # plain PEFT adapter, ΔW = ΔW_task + ΔW_unlearn (what un-gated loaders get)
    result.state            # O3State: task adapter, unlearning LoRA, A history, detectors (to_files / from_files)
    result.report           # loss curves, ‖A_k A_tᵀ‖, detector AUROC, the gate's calibration and its weights on
                            # held-out forget and reference inputs (report["detector"]["gate"]), seconds per stage
    result.files()          # every file of the new version: primary adapter + o3/...

    completions, weights = gated_generate(model, tokenizer, O3State.from_files(files), prompts, gate="auto")
    gated_evaluate(model, tokenizer, state, examples, gate="auto")   # exact match, gated
    # gate: "auto" (each detector's own gate: calibrated by default), "calibrated" / "paper" (ablation), "off", w

A second request on result.state continues the sequence. PRIVACY: an O3 state's detectors hold encoder features of
the forget sets (unlearning/detector.py); its files need the forget data's access rules.
"""
from lora.lazy import lazy_exports

# Lazy exports (PEP 562): `from unlearning.config import UnlearnConfig` must stay torch-free for the hub's params
# check, and importing a submodule runs this file first, so the torch-using modules load on first use only.
_EXPORTS = {
    "UnlearnConfig": "unlearning.config",
    "Detector": "unlearning.detector",
    "soft_weight": "unlearning.gate",
    "detector_weights": "unlearning.inference",
    "gate_weights": "unlearning.inference",
    "gated_evaluate": "unlearning.inference",
    "gated_generate": "unlearning.inference",
    "o3_applied": "unlearning.inference",
    "unlearn_delta_scale": "unlearning.inference",
    "REFUSALS": "unlearning.relabelling",
    "relabel": "unlearning.relabelling",
    "UnlearnResult": "unlearning.request",
    "split_forget": "unlearning.request",
    "unlearn": "unlearning.request",
    "O3State": "unlearning.state",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
