"""LoRA supervised fine-tuning on (prompt, completion) pairs: a plain loop, no HF Trainer.

Every method trains LoRAs the same way (Trans-LoRA's discriminator and distillation, O3's unlearning LoRA, the
ICM-LoRA trajectories, the `train` job), so the loop lives here once: loss on completion tokens only (the prompt is
given, not learned), AdamW, linear schedule with warmup, gradient accumulation, a fixed seed for the LoRA init and
the batch order, checkpoints every N steps, and a progress callback a job uses to report and to cancel.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

import torch
from transformers import get_linear_schedule_with_warmup

from lora.adapter import Adapter
from lora.config import TrainConfig  # noqa: F401 - the config lives torch-free beside the others
from lora.progress import Progress
from lora.wrapping import wrapped

IGNORE = -100  # label id torch's cross-entropy skips: prompt and padding positions


@dataclass
class TrainResult:
    adapter: Adapter
    losses: list[float]  # completion-token cross-entropy per optimizer step
    checkpoints: list[tuple[int, Adapter]] = field(default_factory=list)
    extra_losses: list[float] = field(default_factory=list)  # the extra_loss term per step, when one was given


def encode_pair(tokenizer, prompt: str, completion: str, max_len: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one example: prompt tokens (with the tokenizer's own special prefix, e.g. BOS) get
    IGNORE labels, completion tokens + EOS get their ids. Prompt and completion are tokenised separately so the
    boundary is exact. Over-long examples lose prompt tokens from the left: the completion is what is learned."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        completion_ids = completion_ids + [tokenizer.eos_token_id]
    completion_ids = completion_ids[:max_len]
    keep = max_len - len(completion_ids)
    prompt_ids = prompt_ids[len(prompt_ids) - keep:] if keep > 0 else []
    return prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch (positions stay 0..n-1, so no position_ids are needed)."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (ids, labs) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(labs)] = torch.tensor(labs)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def labelled_logits(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) at the positions whose next token is labelled in some row of the batch: (B, P, vocab) and
    (B, P), P <= width - 1.

    Why: the output projection over the vocabulary is most of a small model's compute (Gemma 3 270M: 262k x 640,
    more than its transformer layers), and a completion is a few tokens after a longer prompt. `logits_to_keep` (a
    tensor of positions, which every transformers causal LM takes) projects only those positions; the prompt's
    logits were never used."""
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
    if keep.numel() == 0:  # nothing labelled: one position, all of it ignored
        keep = torch.zeros(1, dtype=torch.long, device=targets.device)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    return logits, targets[:, keep]


def completion_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over labelled positions, number of such positions)."""
    logits, targets = labelled_logits(model, batch)
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    return loss, int((targets != IGNORE).sum())


def _batches(n: int, size: int, rng: random.Random):
    """Endless micro-batches of example indices: shuffled epochs, seeded."""
    order: list[int] = []
    while True:
        batch = []
        while len(batch) < size:
            if not order:
                order = list(range(n))
                rng.shuffle(order)
            batch.append(order.pop())
        yield batch


def train_lora(
    model,
    tokenizer,
    pairs: list[tuple[str, str]],
    config: TrainConfig,
    progress: Progress | None = None,
    init: Adapter | None = None,
    extra_loss: Callable[[object], torch.Tensor] | None = None,
    base_name: str | None = None,
) -> TrainResult:
    """Train a LoRA on `model` and return it as an Adapter; the base model is left exactly as it was.

    - init: start from this adapter's weights and LoRA config (rank, alpha, targets) instead of a fresh LoRA.
    - extra_loss(peft_model) -> scalar tensor, added once per optimizer step (O3's orthogonality term).
    - progress("training", step, steps, {"loss", "lr"}) after each optimizer step (lora.progress protocol;
      step counts from 1); raise lora.progress.Cancelled in it to stop: the base is unwrapped and it propagates.
    - base_name goes into the adapter config as base_model_name_or_path.
    """
    if not pairs:
        raise ValueError("no training examples")
    device = next(model.parameters()).device
    examples = [encode_pair(tokenizer, p, c, config.max_len) for p, c in pairs]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lora_config = init.lora_config() if init is not None else config.lora_config(base_name)
    if base_name is not None:
        lora_config.base_model_name_or_path = base_name
    lora_config.inference_mode = False

    # fork_rng: seeding for the LoRA init and dropout must not disturb the caller's random stream
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        with wrapped(model, lora_config, init) as peft_model:
            return _loop(peft_model, examples, pad_id, config, device, progress, extra_loss)


def _loop(peft_model, examples, pad_id, config, device, progress, extra_loss) -> TrainResult:
    """The optimisation loop proper; runs inside the seeded, wrapped context train_lora sets up."""
    rng = random.Random(config.seed)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, config.warmup, config.steps)
    batches = _batches(len(examples), config.batch_size, rng)
    result = TrainResult(adapter=None, losses=[])  # type: ignore[arg-type]
    peft_model.train()
    for step in range(1, config.steps + 1):
        micro = [collate([examples[i] for i in next(batches)], pad_id) for _ in range(config.grad_accum)]
        tokens = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in micro)
        total = 0.0
        for batch in micro:  # normalise by the step's token count so accumulation equals one big batch
            loss_sum, _ = completion_loss_sum(peft_model, {k: v.to(device) for k, v in batch.items()})
            (loss_sum / max(tokens, 1)).backward()
            total += loss_sum.item()
        if extra_loss is not None:
            term = extra_loss(peft_model)
            term.backward()
            result.extra_losses.append(term.item())
        optimizer.step()
        lr = schedule.get_last_lr()[0]
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss = total / max(tokens, 1)
        result.losses.append(loss)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            result.checkpoints.append((step, Adapter.from_peft_model(peft_model)))
        if progress is not None:
            progress("training", step, config.steps, {"loss": loss, "lr": lr})
    peft_model.eval()
    result.adapter = Adapter.from_peft_model(peft_model)
    return result
