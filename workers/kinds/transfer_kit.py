"""`transfer_kit`: a Trans-LoRA kit for an adapter version while its real data exists — the discriminator (a PEFT
adapter on the source base, lineage discriminates_for the source, kit files under kit/) and the seeds (a dataset
version, seeds_for the source). The kit report goes into the discriminator version's metrics."""
from __future__ import annotations

from transfer import KitConfig, make_kit
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress

STAGES = {"generating synthetic inputs": (0.05, 0.35), "training discriminator": (0.35, 0.9),
          "scoring held-out": (0.9, 0.98)}


def kit_outputs(kit, name: str | None = None, parents: list | None = None) -> list[Output]:
    """The kit as two registry objects: the discriminator adapter (with the kit's files) and the seed dataset."""
    files = kit.to_files()
    extra = {k: v for k, v in files.items() if k.startswith("kit/")}
    report = {k: v for k, v in kit.report.items() if k != "config"}
    return [Output(adapter=kit.discriminator, metrics={"kit": report}, name=name, extra_files=extra,
                   parents=list(parents or [])),
            Output(object="dataset", name=name, rows=[{"prompt": p, "completion": c} for p, c in kit.seeds],
                   relation="seeds_for", parents=[(o, r, "seeds_for") for o, r, _ in parents or []],
                   metrics={"records": len(kit.seeds)})]


def run(ctx: JobContext, params: dict) -> list[Output]:
    (ref,) = ctx.inputs
    adapter, info = ctx.load_adapter(ref)
    ctx.progress(0.0, "loading base")
    model, tokenizer = ctx.load_base(info["base"])
    source = params.get("task") or params["dataset"]
    pairs = load_pairs(ctx, source)
    ctx.log(f"making a kit from {len(pairs)} real examples of {source}")
    adapter.config["base_model_name_or_path"] = info["base"]
    kit = make_kit(adapter, model, tokenizer, pairs, config_from(KitConfig, params),
                   progress=method_progress(ctx, stages=STAGES), source_base_name=info["base"])
    log_kit_quality(ctx, kit)
    return kit_outputs(kit)


def log_kit_quality(ctx: JobContext, kit) -> None:
    """The discriminator's held-out numbers, and each of the kit's warnings as a "warning:" line (the CLI prints
    the job's log lines as it waits, so a discriminator at chance is said where the user is looking)."""
    r = kit.report
    if r.get("heldout_balanced_accuracy") is not None:
        low, high = r["heldout_balanced_accuracy_ci95"]
        auroc = r.get("heldout_auroc")
        ctx.log(f"discriminator held-out balanced accuracy {r['heldout_balanced_accuracy']:.2f} (95% CI "
                f"{low:.2f}-{high:.2f}) on {r['heldout_real']} real + {r['heldout_synthetic']} synthetic inputs"
                + (f", AUROC {auroc:.2f}" if auroc is not None else ""))
    for warning in kit.warnings:
        ctx.log(f"warning: {warning}")
