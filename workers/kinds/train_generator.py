"""`train_generator`: ICM-LoRA — a CVAE trained on the trajectory checkpoints of a family of adapter versions (the
checkpoints/step-N/ files `train` stores with checkpoint_every), each conditioned on its task: the hidden state of
its own training examples (train/source in its metrics) through the base, or its description. Publishes a
generator version, trained_from every input, with the training curve, the generator/checkpoints size ratio and how
well the members' conditions separate them (report["conditions"]: between-member spread, |Spearman| of the first
principal component with the inputs' order, which is the family's k when the caller lists members by k; for
hidden-state generators report["conditions_other"] measures the other kind, with/without the adapter, for
comparison), and per member how close the generator's decode of its condition comes to its trained adapter
(report["member_fidelity"], generation.fidelity)."""
from __future__ import annotations

import re

import torch

from generation import (GeneratorConfig, Member, condition_separability, hidden_state_condition, member_condition,
                        member_fidelity, train_generator)
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
    members, base, other, finals, examples = [], None, [], [], []
    for i, ref in enumerate(ctx.inputs):
        ctx.check_cancelled()
        adapter, info = ctx.load_adapter(ref)
        base = info["base"]
        checkpoints = trajectory(ctx.load_files(ref))
        finals.append(adapter)
        if config.condition == "text":
            condition = member_condition(config, description=params["descriptions"][i])
            examples.append(None)  # a text generator reads no member data: its fidelity is in weights only
        else:
            model, tokenizer = ctx.load_base(base)
            pairs = load_pairs(ctx, info["metrics"]["train/source"])[: config.condition_examples]
            texts = [p + c for p, c in pairs]  # whole examples: a family's members differ in their answers
            examples.append(pairs)
            condition = member_condition(config, model=model, tokenizer=tokenizer, texts=texts, adapter=adapter)
            # the other kind (with the adapter when training on the base alone, and vice versa), only to report how
            # well each kind separates the members: the generator trains on `condition`
            other.append(hidden_state_condition(model, tokenizer, texts[: config.condition_examples],
                                                adapter=None if config.condition_with_adapter else adapter))
        members.append(Member(name=ref, checkpoints=checkpoints, condition=condition))
        ctx.progress(0.1 * (i + 1) / len(ctx.inputs), "conditions")
        ctx.log(f"{ref}: {len(checkpoints)} checkpoints")
    generator = train_generator(members, config, progress=method_progress(ctx, 0.1, 0.98), base_name=base)
    separation = generator.report["conditions"]
    if other:
        kind = "base_alone" if config.condition_with_adapter else "with_adapter"
        generator.report["conditions_other"] = {"kind": kind, **condition_separability(torch.stack(other))}
    ctx.log(f"conditions: between-member spread {separation['spread']:.3f}, |Spearman(PC1, input order)| "
            f"{separation['pc1_spearman']}" + (f"; {kind}: spread {generator.report['conditions_other']['spread']:.3f}"
                                               if other else ""))
    fidelity = []
    for member, trained, pairs in zip(members, finals, examples):
        ctx.check_cancelled()
        model, tokenizer = ctx.load_base(base) if pairs else (None, None)
        fidelity.append(member_fidelity(generator, member.name, member.condition, trained, model, tokenizer, pairs))
        ctx.log(f"{member.name}: weight error {fidelity[-1]['weight_error']:.3f}" + (
            f", log-likelihood gain recovered {fidelity[-1]['recovered']:.2f}" if "recovered" in fidelity[-1] else ""))
    generator.report["member_fidelity"] = fidelity
    metrics = {"condition": config.condition, "generator": generator.report}
    return [Output(object="generator", files=generator.to_files(), base=base, metrics=metrics)]
