"""The routed merge (method "route"): keep every input adapter as an expert and route each input to its own.

A static merge folds n adapters into one delta and loses much of what each knew; a routed version keeps the n
experts and a router, and serves an input with the expert (or the mix of experts) the router picks
(merging/routed_inference.py). The router is lora.gating's `Router`, the same calibrated gate O3 uses, one per
expert; what differs is where an expert's score comes from:

  "examples": prototypes in the sentence encoder's space (lora.encoder, the space O3's detectors work in): expert
      k's prototype is the normalised mean of its examples' embeddings, an input's score is its cosine to each
      prototype. Each expert's calibration is fitted on leave-one-out scores of its own examples (positives: the
      prototype without that example) against the other experts' examples (negatives).
  "arrow": from the adapters alone (Arrow routing, Ostapenko et al. 2024): expert k's prototype on module m is the
      top right singular vector v of its ΔW (the input direction the adapter changes most); an input's score is
      mean over adapted modules and prompt tokens of |v·x|/|x|, x the base model's input to that module. Without
      examples the scores are compared as they are (temperature ARROW_TEMPERATURE); with examples the calibration is
      fitted on them as for "examples" (the prototypes stay the adapters').

What a plain PEFT loader gets from a routed version is its primary adapter: the `cat` merge of the experts (every
delta at full weight). The experts themselves are ordinary PEFT folders under route/experts/<k>/.

Files (all under route/, next to the primary adapter_config.json / adapter_model.safetensors):

    route/manifest.json                                   format, router kind and calibration, experts (sources)
    route/experts/<k>/adapter_config.json, adapter_model.safetensors   expert k, loadable on its own
    route/prototypes.safetensors                          "examples": (experts, 384); "arrow": one (experts, in)
                                                          matrix per module path
PRIVACY: an "examples" prototype is the mean embedding of that input's examples.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors.torch import load, save

from lora import Adapter
from lora.encoder import load_encoder, sentence_features
from lora.gating import GateCalibration, Router, fit_router, routing_summary
from lora.manifest import read_manifest
from merging.config import MergeConfig
from merging.errors import MergeError

ROOT = "route/"
MANIFEST = ROOT + "manifest.json"
PROTOTYPES = ROOT + "prototypes.safetensors"
FORMAT = "adaptarium-route/1"
# Arrow's scores without examples to calibrate them: |cos| alignments whose gaps between experts are a few hundredths
ARROW_TEMPERATURE = 0.02
BATCH = 16


def _expert_prefix(k: int) -> str:
    return f"{ROOT}experts/{k:02d}/"


@dataclass
class RoutedMerge:
    """Experts, where they came from, and the router that picks among them."""

    experts: list[Adapter]
    router: Router
    kind: str  # "examples" | "arrow"
    prototypes: dict[str, torch.Tensor]  # "examples": {"sentence": (experts, dim)}; "arrow": module -> (experts, in)
    sources: list[str] = field(default_factory=list)  # the inputs' version refs, in expert order
    report: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- scoring

    def scores(self, model, tokenizer, prompts: list[str]) -> np.ndarray:
        """(n, experts) raw scores of the prompts (higher = more like that expert's inputs)."""
        if self.kind == "examples":
            return (sentence_features(prompts).double() @ self.prototypes["sentence"].double().T).numpy()
        return arrow_scores(model, tokenizer, prompts, self.prototypes)

    def warm(self) -> None:
        """Load what scoring needs once per process (the sentence encoder), so a request's routing time is its own."""
        if self.kind == "examples":
            load_encoder()

    def weights(self, model, tokenizer, prompts: list[str]) -> np.ndarray:
        """(n, experts) routing weights: one-hot where the router is sure, else the soft mix (lora.gating.Router)."""
        return self.router.weights(self.scores(model, tokenizer, prompts))

    # ---------------------------------------------------------------- files

    def to_files(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for k, expert in enumerate(self.experts):
            config_json, weights = expert.to_bytes()
            files[_expert_prefix(k) + "adapter_config.json"] = config_json
            files[_expert_prefix(k) + "adapter_model.safetensors"] = weights
        files[PROTOTYPES] = save({name: t.float().contiguous() for name, t in self.prototypes.items()},
                                 metadata={"format": "pt"})
        manifest = {"format": FORMAT, "router": {"kind": self.kind, **self.router.to_dict()},
                    "experts": [{"index": k, "source": self.sources[k] if k < len(self.sources) else None,
                                 "folder": _expert_prefix(k)} for k in range(len(self.experts))],
                    "files": sorted(files)}
        files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "RoutedMerge":
        manifest = read_manifest(files, MANIFEST, FORMAT, "routed merge")
        experts = [Adapter.from_bytes(files[e["folder"] + "adapter_config.json"],
                                      files[e["folder"] + "adapter_model.safetensors"]) for e in manifest["experts"]]
        router = manifest["router"]
        return cls(experts=experts, router=Router.from_dict(router), kind=router["kind"],
                   prototypes=dict(load(files[PROTOTYPES])), sources=[e["source"] for e in manifest["experts"]])

    @staticmethod
    def is_routed(files) -> bool:
        """True when a version's files (or file names) include a routed merge (so `evaluate` / `infer` route it)."""
        return MANIFEST in files


# -------------------------------------------------------------------------------------------------------- arrow

def arrow_prototypes(experts: list[Adapter]) -> dict[str, torch.Tensor]:
    """module -> (experts, in) float32: each expert's top right singular vector of ΔW there (zeros where an expert
    has no LoRA on that module). ΔW = s·B A has rank r: with A^T = QR, ΔW = s·(B R^T) Q^T, so the SVD of the small
    (out, r) matrix B R^T gives it (v = Q·Vh[0]); the sign of v does not matter (scores use |v·x|)."""
    modules = sorted({m for e in experts for m in e.modules()})
    out = {}
    for m in modules:
        rows = []
        width = next(e.a(m).shape[1] for e in experts if m in e.modules())
        for e in experts:
            if m not in e.modules():
                rows.append(torch.zeros(width))
                continue
            q, r = torch.linalg.qr(e.a(m).double().T)  # (in, r), (r, r)
            _, _, vh = torch.linalg.svd(e.scaling(m) * e.b(m).double() @ r.T, full_matrices=False)
            rows.append((q @ vh[0]).float())
        out[m] = torch.stack(rows)
    return out


@torch.no_grad()
def arrow_scores(model, tokenizer, prompts: list[str], prototypes: dict[str, torch.Tensor]) -> np.ndarray:
    """(n, experts): mean over the prototypes' modules and each prompt's real tokens of |v_k·x|/|x|, x the base
    model's (no adapter) input to the module."""
    from lora.wrapping import exclusive

    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    experts = next(iter(prototypes.values())).shape[0]
    totals = np.zeros((len(prompts), experts))
    # the decoder without its LM head: no logits are needed (the head of a 49k vocabulary costs several layers)
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), model)
    with exclusive(model):
        state: dict = {}
        handles = []
        for m, v in prototypes.items():
            module = model.get_submodule(m)
            vectors = v.to(device=device, dtype=torch.float32)

            def hook(mod, args, vectors=vectors):
                x = args[0].float()
                align = (x @ vectors.T).abs() / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # (b, t, experts)
                mask = state["mask"]
                state["sum"] += (align * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True)

            handles.append(module.register_forward_pre_hook(hook))
        try:
            for start in range(0, len(prompts), BATCH):
                enc = tokenizer(prompts[start:start + BATCH], return_tensors="pt", padding=True).to(device)
                mask = enc["attention_mask"].float()
                state.update(mask=mask, sum=torch.zeros(mask.shape[0], experts, device=device))
                backbone(**enc)
                totals[start:start + mask.shape[0]] = (state["sum"] / len(prototypes)).cpu().numpy()
        finally:
            for handle in handles:
                handle.remove()
    return totals


# -------------------------------------------------------------------------------------------------------- building

def _uncalibrated(experts: int) -> Router:
    """Arrow without examples: the raw scores, compared at ARROW_TEMPERATURE."""
    plain = GateCalibration(center=0.0, scale=1.0, threshold=0.0, temperature=1.0, open_at=0.0, closed_at=0.0,
                            separable=False)
    return Router([plain] * experts, temperature=ARROW_TEMPERATURE)


def _leave_one_out_scores(features: list[torch.Tensor]) -> list[np.ndarray]:
    """(n_k, experts) per expert: cosine of each example to every prototype, its own expert's prototype made
    without it (so the scores are held out, as fit_router needs)."""
    sums = [f.double().sum(dim=0) for f in features]
    full = torch.nn.functional.normalize(torch.stack(sums), dim=-1)
    blocks = []
    for k, f in enumerate(features):
        scores = f.double() @ full.T
        own = torch.nn.functional.normalize(sums[k][None, :] - f.double(), dim=-1)
        scores[:, k] = (f.double() * own).sum(dim=-1)
        blocks.append(scores.numpy())
    return blocks


def route_merge(adapters: list[Adapter], config: MergeConfig, model=None, tokenizer=None,
                examples: list[list[tuple[str, str]]] | None = None, sources: list[str] | None = None,
                progress=None) -> tuple[Adapter, RoutedMerge, dict]:
    """(primary adapter, routed merge, report). config.router picks the router ("examples" needs `examples`, one
    list of (prompt, completion) per input, at least 2 each; "arrow" needs the base `model` and `tokenizer` and
    uses `examples` to calibrate when given). The report holds the router's leave-one-out top-1 accuracy on the
    examples per input (how well it tells the inputs apart) and the routing time."""
    from merging import merge_with_report

    if len(adapters) < 2:
        raise MergeError("a routed merge needs at least 2 adapters")
    if examples is not None:
        if len(examples) != len(adapters):
            raise MergeError(f"route needs one set of examples per input: got {len(examples)} for "
                             f"{len(adapters)} inputs")
        examples = [list(pairs)[: config.fit_examples] for pairs in examples]
        short = [i for i, pairs in enumerate(examples) if len(pairs) < 2]
        if short:
            raise MergeError(f"the router needs at least 2 examples per input; input(s) {short} have fewer")
    if config.router == "examples" and examples is None:
        raise MergeError('router "examples" needs a few examples per input (fit); router "arrow" works from the '
                         "adapters alone")
    if config.router == "arrow" and model is None:
        raise MergeError('router "arrow" needs the base model (its inputs to the adapted modules)')

    primary, report = merge_with_report(adapters, config.model_copy(update={"method": "cat", "weights": None}),
                                        progress=progress)
    report["method"] = "route"
    start = time.perf_counter()
    if config.router == "examples":
        features = [sentence_features([p for p, _ in pairs]) for pairs in examples]
        prototypes = {"sentence": torch.nn.functional.normalize(
            torch.stack([f.sum(dim=0) for f in features]), dim=-1)}
        held_out = _leave_one_out_scores(features)
    else:
        prototypes = arrow_prototypes(adapters)
        held_out = None if examples is None else [
            arrow_scores(model, tokenizer, [p for p, _ in pairs], prototypes) for pairs in examples]
    if held_out is None:
        router = _uncalibrated(len(adapters))
        router.confidence = config.route_confidence
    else:
        router = fit_router(held_out, confidence=config.route_confidence)
    elapsed = time.perf_counter() - start
    routed = RoutedMerge(list(adapters), router, config.router, prototypes, list(sources or []))
    report["route"] = {"router": config.router, "experts": len(adapters), "confidence": config.route_confidence,
                       "sources": list(sources or []), "time_s": elapsed, "calibrated": held_out is not None}
    if held_out is not None:
        weights = [router.weights(block) for block in held_out]
        report["route"].update(
            examples=[len(b) for b in held_out],
            top1_accuracy_held_out=[float(np.mean(w.argmax(axis=1) == k)) for k, w in enumerate(weights)],
            routing=[routing_summary(w) for w in weights])
    routed.report = report["route"]
    return primary, routed, report
