"""`merge`: LoRA-LEGO or a standard merge of two or more adapter versions on one base."""
from __future__ import annotations

from merging import MergeConfig, merge_with_report
from workers.kinds.base import JobContext, Output, config_from, method_progress


def run(ctx: JobContext, params: dict) -> list[Output]:
    loaded = [ctx.load_adapter(ref) for ref in ctx.inputs]
    ctx.progress(0.05, "merging")
    adapter, report = merge_with_report([a for a, _ in loaded], config_from(MergeConfig, params),
                                        progress=method_progress(ctx, 0.05, 0.95))
    adapter.config["base_model_name_or_path"] = loaded[0][1]["base"]  # the submit check made them share one
    return [Output(adapter=adapter, metrics={"merge": report})]
