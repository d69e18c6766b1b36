"""The configs every method builds on, torch-free: the base class of a method's config and the LoRA it trains.

A method's config is a pydantic model that is at once what the method takes (a notebook builds one), what a job
sends (the hub's params model for the kind extends it with the registry objects the job names) and what the CLI,
the API's `job-kinds` schema and the dashboard's form are generated from. So each field carries its limits and a
one-line description here, and nowhere else: a value the method would refuse is refused at submit too.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A seed goes to numpy and torch; numpy's legacy seeding takes at most 2**32-1 (10**30 once passed submit and
# failed in the worker).
MAX_SEED = 2**32 - 1
MAX_COUNT = 10_000_000  # any count without a tighter limit of its own
MAX_TEXT, MAX_ITEMS = 500, 256  # free-form strings and lists stay small (a 1 MB `options` list was once accepted)
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
ESSENTIAL = {"essential": True}  # json_schema_extra of a field the CLI and the form show first (the rest fold away)


def seed_field(description: str = "one seed for every random choice: same inputs and seed give the same result"):
    return Field(0, ge=0, le=MAX_SEED, description=description)


class MethodConfig(BaseModel):
    """Base of every method's config: an unknown field is an error (a typo is not a silently ignored setting), no
    NaN or Infinity (a LoRA trained with alpha=Infinity is all NaN), strict types ("8" is not 8 and "yes" is not
    true: a coerced value is a guess; an int is still a float, and a list field takes a tuple), and a config that
    exists is valid (checked when made, and again when a field is assigned). The job's params are these same models,
    so the API refuses exactly what the method would."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True, validate_assignment=True)

    def replace(self, **changes):
        """A copy with `changes`, validated like a new config (pydantic's model_copy(update=...) checks nothing)."""
        return type(self).model_validate({**self.model_dump(), **changes})


def module_list(default: list[str], description: str):
    return Field(default_factory=lambda: list(default), min_length=1, max_length=MAX_ITEMS, strict=False,
                 description=description)


class LoraFields(MethodConfig):
    """The LoRA each method trains (train's adapter, a kit's discriminator, a transfer's student, the unlearning
    LoRA): q and v projections, r=8, alpha=16, batch 8, 100 steps."""

    rank: int = Field(8, ge=1, le=1024, description="LoRA rank r", json_schema_extra=ESSENTIAL)
    lora_alpha: float = Field(16.0, gt=0, le=1e6, description="LoRA alpha; the update is scaled by alpha / r")
    target_modules: list[Text] = module_list(["q_proj", "v_proj"], "module names the LoRA wraps")
    steps: int = Field(100, ge=1, le=100_000, description="optimizer steps", json_schema_extra=ESSENTIAL)
    # 0 is allowed: a run that must not move the weights (resuming checks use it)
    lr: float = Field(2e-4, ge=0, le=1, description="AdamW learning rate (linear decay)", json_schema_extra=ESSENTIAL)
    batch_size: int = Field(8, ge=1, le=1024, description="examples per optimizer step")
    max_len: int = Field(256, ge=8, le=8192, description="tokens per example; longer ones lose their prompt's start")
    seed: int = seed_field("seed of the LoRA init and the batch order")


class TrainConfig(LoraFields):
    """LoRA supervised fine-tuning (lora.training.train_lora)."""

    grad_accum: int = Field(1, ge=1, le=1024, description="micro-batches accumulated per optimizer step")
    warmup: int = Field(0, ge=0, le=100_000, description="linear warmup steps (at most steps)")
    weight_decay: float = Field(0.0, ge=0, le=10, description="AdamW weight decay")
    checkpoint_every: int | None = Field(None, ge=1, le=100_000, description="keep a checkpoint every N steps "
                                         "(the trajectory an ICM-LoRA generator learns from); none: no checkpoints")
    use_rslora: bool = Field(False, description="rank-stabilised scaling alpha / sqrt(r) instead of alpha / r")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")

    @model_validator(mode="after")
    def _warmup_within_steps(self):
        if self.warmup > self.steps:
            raise ValueError(f"warmup ({self.warmup}) must not exceed steps ({self.steps})")
        return self

    def lora_config(self, base_name: str | None = None):
        """The peft LoraConfig of this run (peft is imported here: the config itself stays torch-free)."""
        from peft import LoraConfig

        return LoraConfig(r=self.rank, lora_alpha=self.lora_alpha, target_modules=list(self.target_modules),
                          lora_dropout=self.lora_dropout, use_rslora=self.use_rslora, task_type="CAUSAL_LM",
                          base_model_name_or_path=base_name)
