"""`merge`: LoRA-LEGO or a standard merge of two or more adapter versions on one base; with `fit` (one example set
per input), the merge's coefficients are fitted on those examples (merging.fit_merge), which needs the base's
weights; the coefficients, the fit curve and the fit time go into the version's metrics."""
from __future__ import annotations

from merging import MergeConfig, fit_merge, merge_with_report
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress


def run(ctx: JobContext, params: dict) -> list[Output]:
    loaded = [ctx.load_adapter(ref) for ref in ctx.inputs]
    base = loaded[0][1]["base"]  # the submit check made them share one
    adapters, config = [a for a, _ in loaded], config_from(MergeConfig, params)
    if params.get("fit"):
        examples = [load_pairs(ctx, source)[: config.fit_examples] for source in params["fit"]]
        ctx.progress(0.02, "loading base")
        model, tokenizer = ctx.load_base(base)
        ctx.progress(0.05, "merging")
        progress = method_progress(ctx, stages={"merging": (0.05, 0.1), "fitting": (0.1, 0.98)})
        adapter, report = fit_merge(adapters, config, model, tokenizer, examples, progress=progress)
        report["fit"]["sources"] = list(params["fit"])
    else:
        ctx.progress(0.05, "merging")
        adapter, report = merge_with_report(adapters, config, progress=method_progress(ctx, 0.05, 0.95))
    adapter.config["base_model_name_or_path"] = base
    return [Output(adapter=adapter, metrics={"merge": report})]
