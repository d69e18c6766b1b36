"""`evaluate`: exact match of an adapter version (or a base alone) on a task's test split or a dataset; the scores
are the job's result and go into the version's metrics."""
from __future__ import annotations

from lora.evaluation import evaluate_task
from workers.kinds.base import JobContext, Output, eval_examples


def run(ctx: JobContext, params: dict) -> list[Output]:
    adapter, base, state = None, params.get("base"), None
    if ctx.inputs:
        adapter, info = ctx.load_adapter(ctx.inputs[0])
        base = info["base"]
        if any(name.startswith("o3/") for name in info.get("files", ())) and params.get("gate", "auto") == "auto":
            from unlearning import O3State

            state = O3State.from_files(ctx.load_files(ctx.inputs[0]))
    ctx.progress(0.1, "loading base")
    model, tokenizer = ctx.load_base(base)
    examples, name = eval_examples(ctx, params.get("task") or params["dataset"])
    if params.get("limit"):
        examples = examples[: params["limit"]]
    ctx.check_cancelled()
    ctx.progress(0.3, "generating")
    if state is not None:  # an O3 version: base + task + w(x)·unlearning LoRA, as it is meant to be served
        from unlearning import gated_evaluate

        scores = gated_evaluate(model, tokenizer, state, examples, max_new_tokens=params.get("max_new_tokens"))
    else:
        scores = evaluate_task(model, tokenizer, adapter, examples, max_new_tokens=params.get("max_new_tokens"))
    ctx.metric(f"eval/{name}/exact_match", scores["exact_match"])
    metrics = {f"eval/{name}/exact_match": scores["exact_match"], f"eval/{name}/n": scores["n"]}
    # per item, in the examples' order, for paired comparisons (bench/quality): on the job only, not the version
    items = {f"eval/{name}/correct": "".join(str(c) for c in scores["correct"])}
    if "items_per_s" in scores:
        items[f"eval/{name}/items_per_s"] = scores["items_per_s"]
    if state is not None:
        metrics[f"eval/{name}/gate_mean"] = scores["gate_mean"]
        items[f"eval/{name}/gate_weights"] = scores["gate_weights"]
    elif params.get("gate") == "off" and adapter is not None and any(n.startswith("o3/") for n in info.get("files", ())):
        metrics = {f"eval/{name}/ungated/{k.rsplit('/', 1)[1]}": v for k, v in metrics.items()}
        items = {f"eval/{name}/ungated/{k.rsplit('/', 1)[1]}": v for k, v in items.items()}
    return [Output(metrics=metrics, data={**metrics, **items})]
