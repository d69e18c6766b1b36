"""`merge`: LoRA-LEGO or a standard merge of two or more adapter versions on one base."""
from __future__ import annotations

from merging import MergeConfig, MergeError, merge_with_report
from workers.kinds.base import JobContext, Output


def run(ctx: JobContext, params: dict) -> list[Output]:
    loaded = [ctx.load_adapter(ref) for ref in ctx.inputs]
    bases = {info["base"] for _, info in loaded}
    if len(bases) != 1:
        raise MergeError(f"inputs are on different bases: {sorted(map(str, bases))}")
    ctx.progress(0.05, "merging")

    def progress(stage, done, total, metrics=None) -> None:
        ctx.check_cancelled()
        ctx.progress(0.05 + 0.9 * done / max(total, 1), "merging")

    adapter, report = merge_with_report([a for a, _ in loaded], MergeConfig(**params), progress=progress)
    adapter.config["base_model_name_or_path"] = bases.pop()
    return [Output(adapter=adapter, metrics={"merge": report},
                   parents=[(info["ref"], "merged_from") for _, info in loaded])]
