"""`train`: LoRA SFT on a built-in task or a registry dataset, with the loss curve streamed as metric events."""
from __future__ import annotations

from lora.training import TrainConfig, train_lora
from workers.kinds.base import JobContext, Output, config_from, load_pairs, method_progress


def run(ctx: JobContext, params: dict) -> list[Output]:
    ctx.progress(0.0, "loading base")
    model, tokenizer = ctx.load_base(params["base"])
    source = params.get("task") or params["dataset"]
    pairs = load_pairs(ctx, source)
    ctx.log(f"training on {len(pairs)} examples from {source}")
    config = config_from(TrainConfig, params)
    init = None
    if ctx.inputs:  # continued training: the input's weights and LoRA shape (rank, alpha, targets) are the start
        init, _ = ctx.load_adapter(ctx.inputs[0])
        ctx.log(f"continuing {ctx.inputs[0]} (rank {init.lora_config().r}) for {config.steps} more steps")
    result = train_lora(model, tokenizer, pairs, config, progress=method_progress(ctx, 0.0, 0.9 if params.get(
        "transfer_kit") else 1.0), base_name=params["base"], init=init)
    extra = {}
    for step, checkpoint in result.checkpoints:
        config_json, weights = checkpoint.to_bytes()
        extra[f"checkpoints/step-{step}/adapter_config.json"] = config_json
        extra[f"checkpoints/step-{step}/adapter_model.safetensors"] = weights
    metrics = {"train/final_loss": result.losses[-1], "train/first_loss": result.losses[0],
               "train/steps": len(result.losses), "train/source": source, "train/examples": len(pairs),
               "train/loss_curve": [round(x, 5) for x in result.losses]}
    outputs = [Output(adapter=result.adapter, metrics=metrics, extra_files=extra)]
    if params.get("transfer_kit"):  # the data is at hand now; later it may be gone
        from transfer import KitConfig, make_kit
        from workers.kinds.transfer_kit import kit_outputs, log_kit_quality

        ctx.log("making a transfer kit for the trained adapter")
        kit = make_kit(result.adapter, model, tokenizer, pairs, KitConfig(seed=params["seed"]),
                       progress=method_progress(ctx, 0.9, 1.0), source_base_name=params["base"])
        log_kit_quality(ctx, kit)
        name = f"{ctx.output_name}-kit" if getattr(ctx, "output_name", None) else None
        outputs += kit_outputs(kit, name=name, parents=[("output", "0", "discriminates_for")])
    return outputs
