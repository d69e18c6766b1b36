"""`train_generator`: ICM-LoRA — a CVAE trained on the trajectory checkpoints of a family of adapter versions (the
checkpoints/step-N/ files `train` stores with checkpoint_every), each conditioned on its task: the hidden state of
its own training examples (train/source in its metrics) through the base, or its description. Publishes a
generator version, trained_from every input, with the training curve and the generator/checkpoints size ratio."""
from __future__ import annotations

import re

from generation import GeneratorConfig, Member, member_condition, train_generator
from lora import Adapter
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress

STEP = re.compile(r"^checkpoints/step-(\d+)/adapter_config\.json$")


def trajectory(files: dict[str, bytes]) -> list[tuple[int, Adapter]]:
    """(step, checkpoint) pairs of a version made by `train` with checkpoint_every, in step order."""
    steps = sorted(int(m.group(1)) for name in files if (m := STEP.match(name)))
    return [(step, Adapter.from_bytes(files[f"checkpoints/step-{step}/adapter_config.json"],
                                      files[f"checkpoints/step-{step}/adapter_model.safetensors"])) for step in steps]


def run(ctx: JobContext, params: dict) -> list[Output]:
    config = config_from(GeneratorConfig, params)
    members, base = [], None
    for i, ref in enumerate(ctx.inputs):
        ctx.check_cancelled()
        adapter, info = ctx.load_adapter(ref)
        base = info["base"]
        checkpoints = trajectory(ctx.load_files(ref))
        if config.condition == "text":
            condition = member_condition(config, description=params["descriptions"][i])
        else:
            model, tokenizer = ctx.load_base(base)
            pairs = load_pairs(ctx, info["metrics"]["train/source"])[: config.condition_examples]
            texts = [p + c for p, c in pairs]  # whole examples: a family's members differ in their answers
            condition = member_condition(config, model=model, tokenizer=tokenizer, texts=texts, adapter=adapter)
        members.append(Member(name=ref, checkpoints=checkpoints, condition=condition))
        ctx.progress(0.1 * (i + 1) / len(ctx.inputs), "conditions")
        ctx.log(f"{ref}: {len(checkpoints)} checkpoints")
    generator = train_generator(members, config, progress=method_progress(ctx, 0.1, 0.98), base_name=base)
    metrics = {"condition": config.condition, "generator": generator.report}
    return [Output(object="generator", files=generator.to_files(), base=base, metrics=metrics)]
