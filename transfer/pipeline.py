"""Transfer time: move an adapter from its source base to a target base with the kit and no real data.

1. The target base continues a numbered list of the seed inputs (sampled, cut at the next item number).
2. The discriminator, on the source base, scores each candidate; the filter (TransferConfig.filter) keeps those
   at least as "real" as a quantile of the kit's held-out real inputs and, when max_attempts draws leave the set
   short, the best-ranked of the rest (or only the best-ranked, or the paper's p(yes) > p(no) as an ablation).
3. The source base + source adapter labels each kept input greedily. Labels are text: the two bases may have
   different tokenizers, so nothing but strings passes between them.
4. A fresh LoRA on the target base is trained by SFT on (input, teacher completion).
The "unfiltered" and "seeds_only" data modes are the paper's ablations (see TransferConfig.data).
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from lora.adapter import Adapter
from lora.evaluation import generate
from lora.progress import Progress, silent
from lora.training import TrainConfig, train_lora
from transfer.config import TransferConfig
from transfer.calibration import quantile
from transfer.discriminator import discriminator_scorer
from transfer.kit import Kit, check_fits
from transfer.seeding import caller_rng_preserved
from transfer.similarity import MMD_KIND, Embedder, embed, mean_embedding_distance
from transfer.synthesis import Collection, candidate_drawer, collect

# default cap on draws per wanted example when TransferConfig.max_attempts is 0: the paper's fixed rule gives up
# below 5 % acceptance; the calibrated and ranking filters rank a pool of 4 candidates per example at most
ATTEMPTS_PER_EXAMPLE = {"fixed": 20, "calibrated": 4, "rank": 4}
# the paper's rule: keep x when p(yes | t(x)) > p(no | t(x))
FIXED_THRESHOLD = 0.5


@dataclass
class TransferResult:
    adapter: Adapter  # the student LoRA on the target base (base_model_name_or_path = target_base_name)
    report: dict  # counts, acceptance rate, MMDs, seconds per stage, loss curve, the training examples

    @property
    def synthetic(self) -> list[tuple[str, str]]:
        """The (input, completion) pairs the student was trained on."""
        return [(e["prompt"], e["completion"]) for e in self.report["synthetic"]]

    @property
    def losses(self) -> list[float]:
        return self.report["loss"]


def teacher_labels(model, tokenizer, adapter: Adapter, inputs: list[str], config: TransferConfig,
                   progress: Progress) -> list[str]:
    """Greedy completions of each input by base + adapter, as text (kept raw: a leading space is part of the
    answer in the usual prompt/completion convention). progress("teacher labelling", done, total) per batch."""
    labels: list[str] = []
    size = config.candidate_batch_size
    sampled = config.label_temperature > 0
    rng = random.Random(config.seed + 1)  # its own stream: sampled labels do not shift the candidates' draws
    for start in range(0, len(inputs), size):
        labels += generate(model, tokenizer, inputs[start:start + size], max_new_tokens=config.label_max_new_tokens,
                           stop=tuple(config.label_stop), adapter=adapter, batch_size=size, do_sample=sampled,
                           temperature=config.label_temperature if sampled else 1.0, seed=rng.randrange(2**31))
        progress("teacher labelling", len(labels), len(inputs))
    return labels


def _student_config(config: TransferConfig) -> TrainConfig:
    return TrainConfig(rank=config.rank, lora_alpha=config.lora_alpha, target_modules=tuple(config.target_modules),
                       lr=config.lr, steps=config.steps, batch_size=config.batch_size, max_len=config.max_len,
                       seed=config.seed)


def _sampling_matches(config: TransferConfig, kit: Kit) -> bool | None:
    """Whether the candidates are sampled as the kit's negatives were (None for a kit that did not record it)."""
    kit_config = kit.report.get("config") or {}
    if "temperature" not in kit_config:
        return None
    return (kit_config["temperature"] == config.temperature and kit_config.get("top_p") == config.top_p
            and kit_config.get("max_new_tokens") == config.max_new_tokens)


def _score_summary(collection: Collection) -> dict:
    """Mean p_real of all judged candidates and of the kept ones: how far the filter moved the set."""
    kept = [collection.scores[i] for i in collection.kept_index]
    return {"candidate_score_mean": sum(collection.scores) / len(collection.scores),
            "kept_score_mean": sum(kept) / len(kept)}


def acceptance_rule(config: TransferConfig, kit: Kit) -> tuple[object, bool, dict]:
    """(accept(score) -> bool, fill by rank?, the calibration for the report) for config.filter."""
    if config.filter == "fixed":
        return (lambda s: s > FIXED_THRESHOLD), False, {
            "filter": "fixed", "threshold": FIXED_THRESHOLD, "threshold_source": "p(yes) > p(no) (the paper's rule)"}
    if config.filter == "rank":
        return (lambda s: False), True, {
            "filter": "rank", "threshold": None, "threshold_source": "none: the best-scoring candidates are kept"}
    scores = kit.calibration_scores
    if scores:
        threshold = quantile(scores, config.calibration_quantile)
        source = (f"the {config.calibration_quantile:g}-quantile of p_real over the kit's {len(scores)} held-out "
                  f"real inputs")
    else:
        threshold = FIXED_THRESHOLD
        source = "p(yes) > p(no): the kit has no held-out real scores to calibrate on"
    return (lambda s: s >= threshold), True, {
        "filter": "calibrated", "threshold": threshold, "threshold_source": source,
        "calibration_quantile": config.calibration_quantile, "calibration_size": len(scores or [])}


def _mmds(collection: Collection, seed_inputs: list[str], filtered: bool, embedder: Embedder) -> dict:
    seeds = embedder(seed_inputs)
    return {"mmd_unfiltered_to_seeds": mean_embedding_distance(embedder(collection.judged), seeds),
            "mmd_filtered_to_seeds": (mean_embedding_distance(embedder(collection.kept), seeds)
                                      if filtered else None),
            "mmd_kind": MMD_KIND if embedder is embed else "mean embedding distance, caller's embedder"}


def trans_lora(source_adapter: Adapter, source_model, source_tokenizer, target_model, target_tokenizer, kit: Kit,
               config: TransferConfig | None = None, progress: Progress | None = None,
               target_base_name: str | None = None, embedder: Embedder | None = None) -> TransferResult:
    """Distil `source_adapter` (on source_model) into a fresh LoRA on target_model, with data synthesised from
    `kit`. Both bases are left as they were, also when it fails or is cancelled.

    - progress stages: "generating candidates" (drawn, max_attempts), "filtering" (kept, wanted,
      {"acceptance_rate"}), "teacher labelling" (done, total), "distilling" (step, steps, {"loss", "lr"}).
      Raising lora.progress.Cancelled in it stops the run and propagates.
    - Raises TransferError (with .stats) when max_attempts draws do not yield the synthetic set: with the
      "calibrated" and "rank" filters only when fewer non-empty candidates than wanted were drawn at all; with
      "fixed" also when too few were accepted, or when the first give_up_after judged ones were all rejected.
      ValueError for a bad config or an adapter that does not fit its base.
    - report: the filter and its threshold (with where the threshold came from), acceptance rate, how many were
      kept by the threshold and by rank, mean scores of candidates and kept ones, the kit's warnings, sizes, MMDs,
      seconds per stage, the loss curve and the training examples.
    - embedder: texts -> (n, d) tensor for the MMD; default all-MiniLM-L6-v2 (transfer.similarity.embed).
    """
    with caller_rng_preserved(source_model, target_model):
        return _trans_lora(source_adapter, source_model, source_tokenizer, target_model, target_tokenizer, kit,
                           config, progress, target_base_name, embedder)


def _trans_lora(source_adapter, source_model, source_tokenizer, target_model, target_tokenizer, kit, config,
                progress, target_base_name, embedder) -> TransferResult:
    config = config or TransferConfig()
    progress = progress or silent
    check_fits(source_adapter, source_model, "source")
    if config.data == "filtered":  # the ablations never run the discriminator, so they do not need a usable one
        check_fits(kit.discriminator, source_model, "discriminator")
    if not kit.seeds:
        raise ValueError("the kit has no seed examples")
    if config.seeds is not None and config.seeds > len(kit.seeds):
        raise ValueError(f"seeds={config.seeds} but the kit has only {len(kit.seeds)} seed examples")
    seeds = list(kit.seeds[: config.seeds or len(kit.seeds)])
    seed_inputs = [p for p, _ in seeds]
    wanted = config.synthetic_size or max(1, math.ceil(config.synthetic_multiple * kit.real_size))
    filtered = config.data == "filtered"
    max_attempts = config.max_attempts or ATTEMPTS_PER_EXAMPLE["fixed" if not filtered else config.filter] * wanted
    rng = random.Random(config.seed)
    seconds: dict[str, float] = {}
    collection = None
    calibration = {"filter": None, "threshold": None, "threshold_source": None}

    if config.data == "seeds_only":
        pairs = seeds  # the seeds' real completions: the ablation is "train on the seeds", no teacher
    else:
        draw = candidate_drawer(target_model, target_tokenizer, seed_inputs, temperature=config.temperature,
                                top_p=config.top_p, max_new_tokens=config.max_new_tokens,
                                batch_size=config.candidate_batch_size, seed=rng.randrange(2**31))
        scorer, accept, fill = None, None, False
        if filtered:
            scorer = discriminator_scorer(source_model, source_tokenizer, kit.discriminator, kit.task_name)
            accept, fill, calibration = acceptance_rule(config, kit)
        collection = collect(draw, scorer, wanted, max_attempts=max_attempts, batch_size=config.candidate_batch_size,
                             accept=accept, fill=fill, give_up_after=config.give_up_after, progress=progress)
        seconds.update(collection.seconds)
        start = time.perf_counter()
        labels = teacher_labels(source_model, source_tokenizer, source_adapter, collection.kept, config, progress)
        seconds["teacher labelling"] = time.perf_counter() - start
        pairs = list(zip(collection.kept, labels))

    def forward(stage, done, total, metrics=None):
        progress("distilling", done, total, metrics)

    start = time.perf_counter()
    trained = train_lora(target_model, target_tokenizer, pairs, _student_config(config), progress=forward,
                         base_name=target_base_name)
    seconds["distilling"] = time.perf_counter() - start

    mmd = {"mmd_unfiltered_to_seeds": None, "mmd_filtered_to_seeds": None, "mmd_kind": None}
    if config.measure_mmd and collection is not None:
        start = time.perf_counter()
        mmd = _mmds(collection, seed_inputs, filtered, embedder or embed)
        seconds["mmd"] = time.perf_counter() - start

    report = {
        "data": config.data,
        "source_base": source_adapter.base_model,
        "target_base": target_base_name,
        "task_name": kit.task_name,
        "synthetic_size_wanted": wanted if collection is not None else 0,
        "synthetic_size": len(collection.kept) if collection else 0,  # the filtered (or unfiltered) set
        "train_size": len(pairs),  # = synthetic_size, or the seed count for "seeds_only"
        "max_attempts": max_attempts if collection is not None else 0,
        "candidates_drawn": collection.drawn if collection else 0,
        "candidates_empty": collection.empty if collection else 0,
        "candidates_judged": len(collection.judged) if collection else 0,
        "accepted": collection.accepted if collection else 0,
        # accepted / judged; 1.0 by construction for "unfiltered", None when nothing was generated
        "acceptance_rate": collection.acceptance_rate if collection else None,
        # kept = kept_by_threshold + kept_by_rank: the rank fill tops the set up once max_attempts are drawn
        "kept_by_threshold": len(collection.kept) - collection.filled if collection else 0,
        "kept_by_rank": collection.filled if collection else 0,
        **calibration,
        **(_score_summary(collection) if filtered and collection else {}),
        "seeds_used": len(seeds),
        # the discriminator's negatives were sampled at the kit's settings; it judges best what looks like them
        "sampling_matches_kit": _sampling_matches(config, kit) if filtered else None,
        # the kit's own warnings (e.g. a discriminator at chance): they apply to every transfer that uses it
        "kit_warnings": kit.warnings if filtered else [],
        **mmd,
        "loss": trained.losses,
        "final_loss": trained.losses[-1],
        "student_parameters": trained.adapter.num_parameters(),
        "seconds": seconds,
        "time_s": sum(seconds.values()),
        "synthetic": [{"prompt": p, "completion": c} for p, c in pairs],
        "config": config.model_dump(),
    }
    return TransferResult(adapter=trained.adapter, report=report)
