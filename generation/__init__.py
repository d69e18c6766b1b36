"""ICM-LoRA (arXiv 2501.17635): a conditional VAE that generates LoRA adapter weights for a task.

    train_generator(members, GeneratorConfig(...), progress=None, base_name=None) -> Generator
    generate(generator, condition, GenerateConfig(...), progress=None, model=None, tokenizer=None,
             examples=None) -> GenerateResult
    Generator.to_files() -> {"generator_config.json": ..., "generator.safetensors": ...}; Generator.from_files(files)

A family is a few related adapters on one base (same rank, alpha and target modules), each with its training
trajectory (lora.training.TrainConfig(checkpoint_every=N) -> TrainResult.checkpoints) and a condition vector:
hidden_state_condition / text_condition (or member_condition, which follows the config). check_family and the
torch-free generation.family.family_mismatches list the inputs that do not fit the family.
"""
from generation.conditions import (
    condition_shift,
    hidden_state_condition,
    member_condition,
    task_condition,
    text_condition,
)
from generation.config import GenerateConfig, GeneratorConfig
from generation.errors import GenerationError
from generation.family import check_family, family_mismatches
from generation.flatten import Layout, fit_layout, flatten, natural_key, unflatten
from generation.generate import GenerateResult, generate
from generation.generator import Generator, Member
from generation.train import train_generator

__all__ = [
    "GenerateConfig", "GenerateResult", "GenerationError", "Generator", "GeneratorConfig", "Layout", "Member",
    "check_family", "condition_shift", "family_mismatches", "fit_layout", "flatten", "generate",
    "hidden_state_condition", "member_condition", "natural_key", "task_condition", "text_condition",
    "train_generator", "unflatten",
]
