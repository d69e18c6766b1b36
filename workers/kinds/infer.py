"""`infer`: completions for a few prompts from a version — gated by its detectors when it is an O3 version (gate
"auto"; "off" = its plain PEFT files), routed to its experts when it is a routed merge ("off" = its plain PEFT
files, the experts' cat merge) — or from a base alone. The completions (and gate or routing weights) are the job's
result data."""
from __future__ import annotations

from lora.evaluation import generate
from merging.route import RoutedMerge
from merging.routed_inference import routed_generate
from unlearning import O3State, gated_generate
from workers.kinds.base import JobContext, Output


def run(ctx: JobContext, params: dict) -> list[Output]:
    adapter, base, files = None, params.get("base"), {}
    if ctx.inputs:
        files = ctx.load_files(ctx.inputs[0])
        adapter, info = ctx.load_adapter(ctx.inputs[0])
        base = info["base"]
    ctx.progress(0.1, "loading base")
    model, tokenizer = ctx.load_base(base)
    ctx.progress(0.3, "generating")
    prompts = params["prompts"]
    sampling = {"max_new_tokens": params["max_new_tokens"], "temperature": params["temperature"],
                "seed": params["seed"]}
    result = {"prompts": prompts}
    if RoutedMerge.is_routed(files) and params["gate"] != "off":
        routed = RoutedMerge.from_files(files)
        completions, weights, timing = routed_generate(model, tokenizer, routed, prompts, **sampling)
        result.update(completions=completions, route_weights=[[round(float(w), 4) for w in row] for row in weights],
                      experts=routed.sources, routing_s=round(timing["routing_s"], 4),
                      generate_s=round(timing["generate_s"], 4))
    elif O3State.is_state(files):
        completions, weights = gated_generate(model, tokenizer, O3State.from_files(files), prompts,
                                              gate=params["gate"], **sampling)
        result.update(completions=completions, gate_weights=weights, gate=params["gate"])
    else:
        sample = params["temperature"] > 0
        result["completions"] = generate(model, tokenizer, prompts, max_new_tokens=params["max_new_tokens"],
                                         do_sample=sample, temperature=params["temperature"] if sample else 1.0,
                                         seed=params["seed"], adapter=adapter)
    return [Output(data=result)]
