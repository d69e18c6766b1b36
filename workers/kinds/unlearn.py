"""`unlearn`: O3 — the input adapter (or O3 version, continuing its sequence) learns to forget `forget` with an
orthogonal unlearning LoRA and a new OOD detector. Publishes the next version: the primary PEFT files are task +
unlearning LoRA at full weight (what un-gated loaders get), o3/ holds what gated inference needs. PRIVACY: o3/
detectors hold encoder features of the forget set."""
from __future__ import annotations

from unlearning import O3State, UnlearnConfig, unlearn
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress

STAGES = {"unlearning": (0.05, 0.75), "detector": (0.75, 0.95), "scoring": (0.95, 0.98)}


def run(ctx: JobContext, params: dict) -> list[Output]:
    (ref,) = ctx.inputs
    files = ctx.load_files(ref)
    adapter, info = ctx.load_adapter(ref)
    previous = O3State.from_files(files) if O3State.is_state(files) else adapter
    ctx.log(f"request {previous.n_requests + 1 if isinstance(previous, O3State) else 1} of the unlearning sequence")
    ctx.progress(0.0, "loading base")
    model, tokenizer = ctx.load_base(info["base"])
    forget = load_pairs(ctx, params["forget"])
    reference = [p for p, _ in load_pairs(ctx, params["reference"])] if params.get("reference") else None
    result = unlearn(previous, model, tokenizer, forget, config_from(UnlearnConfig, params),
                     progress=method_progress(ctx, stages=STAGES), base_name=info["base"],
                     reference_inputs=reference)
    gate = result.report["detector"]["gate"]
    held, ref = gate["held_out_forget"]["in_sample"], gate["reference"]["in_sample"]
    ctx.log(f"gate: {gate['gate']}, threshold {gate['calibration']['threshold']:.3f} temperature "
            f"{gate['calibration']['temperature']:.3f} (normalised); held-out forget inputs with weight >= 0.9: "
            f"{held['frac_open']:.0%} of {held['n']}; reference inputs with weight <= 0.05: {ref['frac_closed']:.0%} "
            f"of {ref['n']}; AUROC {gate['auroc']:.3f}")
    merged = result.merged_adapter
    merged.config["base_model_name_or_path"] = info["base"]
    extra = {name: data for name, data in result.files().items() if name.startswith("o3/")}
    return [Output(adapter=merged, metrics={"unlearn": result.report}, extra_files=extra)]
