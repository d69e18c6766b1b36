"""`infer`: completions for a few prompts from a version — gated by its detectors when it is an O3 version (gate
"auto"; "off" = its plain PEFT files) — or from a base alone. The completions (and gate weights) are the job's
result data."""
from __future__ import annotations

from lora.evaluation import generate
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
    if O3State.is_state(files):
        completions, weights = gated_generate(model, tokenizer, O3State.from_files(files), prompts,
                                              gate=params["gate"], **sampling)
        result.update(completions=completions, gate_weights=weights, gate=params["gate"])
    else:
        sample = params["temperature"] > 0
        result["completions"] = generate(model, tokenizer, prompts, max_new_tokens=params["max_new_tokens"],
                                         do_sample=sample, temperature=params["temperature"] if sample else 1.0,
                                         seed=params["seed"], adapter=adapter)
    return [Output(data=result)]
