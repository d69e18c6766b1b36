"""`train`: LoRA SFT on a built-in task or a registry dataset, with the loss curve streamed as metric events."""
from __future__ import annotations

from lora.tasks import load_task
from lora.progress import Cancelled
from lora.training import TrainConfig, train_lora
from workers.kinds.base import JobContext, Output


def run(ctx: JobContext, params: dict) -> list[Output]:
    ctx.progress(0.0, "loading base")
    model, tokenizer = ctx.load_base(params["base"])
    parents = []
    if params.get("task"):
        task = load_task(params["task"])
        pairs = task.pairs("train")
        source = params["task"]
    else:
        pairs = ctx.load_dataset(params["dataset"])
        parents.append((params["dataset"], "trained_from"))
        source = params["dataset"]
    ctx.log(f"training on {len(pairs)} examples from {source}")
    config = TrainConfig(rank=params["rank"], lora_alpha=params["lora_alpha"],
                         target_modules=tuple(params["target_modules"]), lr=params["lr"], steps=params["steps"],
                         batch_size=params["batch_size"], seed=params["seed"],
                         checkpoint_every=params.get("checkpoint_every"), max_len=params["max_len"])

    def progress(stage, step, total, metrics=None) -> None:
        ctx.metric("loss", metrics["loss"], step)
        ctx.progress(step / total, stage)
        ctx.check_cancelled()

    result = train_lora(model, tokenizer, pairs, config, progress=progress, base_name=params["base"])
    extra = {}
    for step, checkpoint in result.checkpoints:
        config_json, weights = checkpoint.to_bytes()
        extra[f"checkpoints/step-{step}/adapter_config.json"] = config_json
        extra[f"checkpoints/step-{step}/adapter_model.safetensors"] = weights
    metrics = {"train/final_loss": result.losses[-1], "train/first_loss": result.losses[0],
               "train/steps": len(result.losses), "train/source": source, "train/examples": len(pairs)}
    return [Output(adapter=result.adapter, metrics=metrics, parents=parents, extra_files=extra)]
