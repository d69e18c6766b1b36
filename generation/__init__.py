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
from lora.lazy import lazy_exports

# Lazy exports (PEP 562): the hub imports generation.config and generation.family, which must stay torch-free, and
# importing a submodule runs this file first; the torch-using modules load on first use only.
_EXPORTS = {
    "condition_separability": "generation.conditions", "condition_shift": "generation.conditions", "hidden_state_condition": "generation.conditions",
    "member_condition": "generation.conditions", "task_condition": "generation.conditions",
    "text_condition": "generation.conditions",
    "GenerateConfig": "generation.config", "GeneratorConfig": "generation.config",
    "GenerationError": "generation.errors",
    "fidelity": "generation.fidelity", "member_fidelity": "generation.fidelity",
    "check_family": "generation.family", "family_mismatches": "generation.family",
    # the function flatten is generation.flatten.flatten: the name `generation.flatten` is its module
    "Layout": "generation.flatten", "fit_layout": "generation.flatten", "natural_key": "generation.flatten",
    "unflatten": "generation.flatten",
    "GenerateResult": "generation.generate", "generate": "generation.generate",
    "Generator": "generation.generator", "Member": "generation.generator",
    "train_generator": "generation.train",
    "subspace_fit": "generation.subspace",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
