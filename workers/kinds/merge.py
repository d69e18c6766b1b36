"""`merge`: LoRA-LEGO or a standard merge of two or more adapter versions on one base; with `fit` (one example set
per input), the merge's coefficients are fitted on those examples (merging.fit_merge), which needs the base's
weights; the coefficients, the fit curve and the fit time go into the version's metrics. Method `route` keeps the
inputs as experts behind a router (merging.route; `fit` gives the router's examples): the primary files are their
cat merge (what plain PEFT loaders get), route/ holds each expert as a PEFT folder, the router and its sources."""
from __future__ import annotations

from merging import MergeConfig, fit_merge, merge_with_report
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress


def run(ctx: JobContext, params: dict) -> list[Output]:
    loaded = [ctx.load_adapter(ref) for ref in ctx.inputs]
    base = loaded[0][1]["base"]  # the submit check made them share one
    adapters, config = [a for a, _ in loaded], config_from(MergeConfig, params)
    if config.method == "route":
        return [_route(ctx, params, config, loaded, base)]
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


def _route(ctx: JobContext, params: dict, config, loaded, base: str) -> Output:
    from merging.route import route_merge

    examples = [load_pairs(ctx, source)[: config.fit_examples] for source in params["fit"]] \
        if params.get("fit") else None
    model = tokenizer = None
    if config.router == "arrow":  # its scores are the base's inputs to the adapted modules
        ctx.progress(0.02, "loading base")
        model, tokenizer = ctx.load_base(base)
    ctx.progress(0.05, "routing")
    experts = []
    for adapter, _ in loaded:
        adapter.config["base_model_name_or_path"] = base  # each expert folder loads on its own
        experts.append(adapter)
    sources = [info.get("ref", ref) for (_, info), ref in zip(loaded, ctx.inputs)]
    primary, routed, report = route_merge(experts, config, model, tokenizer, examples=examples, sources=sources,
                                          progress=method_progress(ctx, 0.05, 0.5))
    route = report["route"]
    if params.get("fit"):
        route["fit_sources"] = list(params["fit"])
    if "top1_accuracy_held_out" in route:
        ctx.log("router top-1 accuracy on its examples, each held out: "
                + ", ".join(f"{s} {a:.0%}" for s, a in zip(sources, route["top1_accuracy_held_out"])))
    primary.config["base_model_name_or_path"] = base
    return Output(adapter=primary, metrics={"merge": report}, extra_files=routed.to_files())
