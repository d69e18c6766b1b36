"""`generate`: ICM-LoRA — a new PEFT adapter decoded from a generator version for a task given by a few examples
(hidden-state generators; the examples run through the base alone, the new task has no adapter yet) or a
description (text generators). With samples > 1 and select "likelihood", the candidate with the best
log-likelihood on the examples is kept; every candidate's score is reported."""
from __future__ import annotations

from generation import GenerateConfig, Generator, generate, task_condition
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress


def run(ctx: JobContext, params: dict) -> list[Output]:
    (ref,) = ctx.inputs
    generator = Generator.from_files(ctx.load_files(ref, object="generator"))
    base = generator.base_model
    config = config_from(GenerateConfig, params)
    pairs = load_pairs(ctx, params["examples"]) if params.get("examples") else []
    model = tokenizer = None
    if generator.condition_kind == "hidden_state" or config.select == "likelihood":
        ctx.progress(0.05, "loading base")
        model, tokenizer = ctx.load_base(base)
    condition = task_condition(generator, model=model, tokenizer=tokenizer, texts=[p + c for p, c in pairs],
                               description=params.get("description"))
    result = generate(generator, condition, config, progress=method_progress(ctx, 0.1, 0.95), model=model,
                      tokenizer=tokenizer, examples=pairs[:32] or None)
    adapter = result.adapter
    adapter.config["base_model_name_or_path"] = base
    report = {"chosen": result.chosen, "scores": result.scores, "samples": config.samples, "select": config.select,
              "condition": generator.condition_kind}
    return [Output(adapter=adapter, metrics={"generate": report})]
