"""`evaluate`: exact match of an adapter version (or a base alone) on a task's test split (or `split` "train") or
a dataset (every row, or the rows whose "split" field is `split`); the scores are the job's result and go into the
version's metrics.

An O3 version is scored as it is served (gate "auto": each request's detector with its own gate); "off" scores its
plain PEFT files (keys under eval/<name>/ungated/), "calibrated" / "paper" put that gate on every detector (the
ablation; keys under eval/<name>/gate_<gate>/), so an ablation never overwrites the served scores. Besides the
name-keyed metrics, the job's data holds the same numbers under `scores` with plain keys, so a caller need not match
key suffixes.

A routed merge (route/ files) is scored routed: every item goes to its expert (or their mix), and the job's data adds
per item the routing weights and the top expert, and the router's share of the time (the version's metrics get the
top-1 counts per expert); gate "off" scores its plain PEFT files (the experts' cat merge, keys under .../unrouted/)."""
from __future__ import annotations

from lora.evaluation import evaluate_task
from workers.kinds.base import JobContext, Output, eval_examples


def run(ctx: JobContext, params: dict) -> list[Output]:
    adapter, base, state, is_o3, is_routed, routed = None, params.get("base"), None, False, False, None
    gate = params.get("gate", "auto")
    if ctx.inputs:
        adapter, info = ctx.load_adapter(ctx.inputs[0])
        base = info["base"]
        is_o3 = any(name.startswith("o3/") for name in info.get("files", ()))
        is_routed = any(name.startswith("route/") for name in info.get("files", ()))
        if is_routed and gate != "off":
            from merging.route import RoutedMerge

            routed = RoutedMerge.from_files(ctx.load_files(ctx.inputs[0]))
        if is_o3 and gate != "off":
            from unlearning import O3State

            state = O3State.from_files(ctx.load_files(ctx.inputs[0]))
    ctx.progress(0.1, "loading base")
    model, tokenizer = ctx.load_base(base)
    examples, name = eval_examples(ctx, params.get("task") or params["dataset"], params.get("split"))
    if params.get("limit"):
        examples = examples[: params["limit"]]
    ctx.check_cancelled()
    ctx.progress(0.3, "generating")
    if state is not None:  # an O3 version: base + task + w(x)·unlearning LoRA, as it is meant to be served
        from unlearning import gated_evaluate

        scores = gated_evaluate(model, tokenizer, state, examples, gate=gate,
                                max_new_tokens=params.get("max_new_tokens"))
    elif routed is not None:  # a routed merge: every item to its expert, as it is meant to be served
        from merging.routed_inference import routed_evaluate

        scores = routed_evaluate(model, tokenizer, routed, examples, max_new_tokens=params.get("max_new_tokens"))
    else:
        scores = evaluate_task(model, tokenizer, adapter, examples, max_new_tokens=params.get("max_new_tokens"))
    prefix = f"eval/{name}"
    if is_o3 and gate == "off":
        prefix += "/ungated"
    elif is_routed and gate == "off":
        prefix += "/unrouted"
    elif is_o3 and gate != "auto":
        prefix += f"/gate_{gate}"
    plain = {"exact_match": scores["exact_match"], "n": scores["n"]}
    # per item, in the examples' order, for paired comparisons (bench/quality): on the job only, not the version
    items = {"correct": "".join(str(c) for c in scores["correct"])}
    if "items_per_s" in scores:
        items["items_per_s"] = scores["items_per_s"]
    if state is not None:
        summary = scores["gate"]
        plain.update(gate_mean=scores["gate_mean"], gate_frac_open=summary["frac_open"],
                     gate_frac_closed=summary["frac_closed"])
        items.update(gate_weights=scores["gate_weights"], gate_summary=summary)
    if routed is not None:
        plain["route_top1_counts"] = scores["route"]["top1_counts"]
        items.update(route_weights=scores["route_weights"], route_top=scores["route_top"],
                     routing_s=scores["routing_s"], routing_share=scores["routing_share"],
                     experts=routed.sources)
    ctx.metric(f"{prefix}/exact_match", scores["exact_match"])
    metrics = {f"{prefix}/{k}": v for k, v in plain.items()}
    data = {**metrics, **{f"{prefix}/{k}": v for k, v in items.items()},
            "scores": {**plain, **items, "source": name, "split": params.get("split"),
                      "gate": gate if is_o3 else None}}
    return [Output(metrics=metrics, data=data)]
