"""The discriminator: a LoRA on the source base that answers "yes" for real task inputs and "no" for inputs the
source base made up. At transfer time it scores candidates with p(yes) / (p(yes) + p(no)), and the filter
(transfer.calibration, TransferConfig.filter) decides from the scores.

It is trained with the ordinary SFT loop (lora.training.train_lora) on the answer as the completion, so the loss
is the answer's cross-entropy, and it is scored by the log-likelihood of each whole answer
(lora.evaluation.yes_no_prob): no first-token trick, so it works for any tokenizer.
"""
from __future__ import annotations

import torch

from lora.adapter import Adapter
from lora.evaluation import yes_no_prob
from lora.progress import Progress
from lora.training import TrainConfig, TrainResult, train_lora
from transfer.config import KitConfig
from transfer.prompts import NO, YES, discriminator_prompt
from transfer.synthesis import Score


def train_discriminator(model, tokenizer, real_inputs: list[str], synthetic_inputs: list[str], config: KitConfig,
                        base_name: str | None = None, progress: Progress | None = None) -> TrainResult:
    """A fresh LoRA on `model` trained on t(x) -> "yes" for real inputs and t(x) -> "no" for synthetic ones.
    The smaller class is repeated up to the larger one's size, so more negatives than real inputs sharpen the
    boundary without teaching the prior "mostly no". Steps are reported as ("training discriminator", step,
    steps, {"loss", "lr"})."""
    real, synthetic = balanced(list(real_inputs), list(synthetic_inputs))
    pairs = ([(discriminator_prompt(x, config.task_name), YES) for x in real]
             + [(discriminator_prompt(x, config.task_name), NO) for x in synthetic])
    train_config = TrainConfig(rank=config.rank, lora_alpha=config.lora_alpha,
                               target_modules=tuple(config.target_modules), lr=config.lr, steps=config.steps,
                               batch_size=config.batch_size, max_len=config.max_len, seed=config.seed)
    forward = None
    if progress is not None:
        def forward(stage, done, total, metrics=None):
            progress("training discriminator", done, total, metrics)
    return train_lora(model, tokenizer, pairs, train_config, progress=forward, base_name=base_name)


def p_real(model, tokenizer, discriminator: Adapter, inputs: list[str], task_name: str) -> torch.Tensor:
    """p(yes) / (p(yes) + p(no)) per input under base + discriminator; > 0.5 means "looks like the task's"."""
    prompts = [discriminator_prompt(x, task_name) for x in inputs]
    return yes_no_prob(model, tokenizer, prompts, adapter=discriminator, yes=YES, no=NO)


def balanced(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """Both lists at the larger one's length, the shorter one cycled (no class is dropped, none is empty-padded)."""
    size = max(len(a), len(b))

    def cycled(items):
        return [items[i % len(items)] for i in range(size)] if items else []

    return cycled(a), cycled(b)


def discriminator_scorer(model, tokenizer, discriminator: Adapter, task_name: str) -> Score:
    """Candidates -> p_real of each (floats): what every filter of TransferConfig.filter decides from."""

    def score(candidates: list[str]) -> list[float]:
        return p_real(model, tokenizer, discriminator, candidates, task_name).tolist()

    return score
