"""Source time: the kit that lets an adapter move later without its data.

While the real task data D exists, `make_kit` keeps a few seed examples and trains the discriminator (a fresh LoRA
on the source base: real inputs -> "yes", inputs the source base generated from the seed prompt -> "no"), and
measures it on held-out examples of both classes. The held-out real inputs' scores are the calibration a transfer
sets its acceptance threshold from (transfer.calibration); a discriminator at chance on them is flagged in the
report's `warnings`. The kit (discriminator, seeds, task name, |D|, report) is all a later transfer needs; D itself
is not kept. `Kit.save` / `Kit.load` give it a plain folder form: the
discriminator as a PEFT adapter folder, the seeds as JSONL, the rest as JSON.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from lora.adapter import Adapter
from lora.bases import module_shapes
from lora.progress import Progress, silent
from transfer.calibration import calibration_table, chance_warning, heldout_quality
from transfer.config import KitConfig
from transfer.discriminator import p_real, train_discriminator
from transfer.seeding import caller_rng_preserved
from transfer.synthesis import candidate_drawer, collect

DISCRIMINATOR_DIR = "discriminator"
SEEDS_FILE = "seeds.jsonl"
KIT_FILE = "kit.json"
# kit-time synthesis has no judge, so only empty generations can exhaust this; 20x matches the transfer's default
ATTEMPTS_PER_SYNTHETIC = 20


@dataclass
class Kit:
    """Everything a transfer needs from source time."""

    discriminator: Adapter  # LoRA on the source base; answers "yes"/"no" to discriminator_prompt(x, task_name)
    seeds: list[tuple[str, str]]  # (prompt, completion) examples from D: the generator's examples, and the
    # training set of the seeds-only ablation
    task_name: str  # the <task> in the discriminator's question; the transfer must ask the same question
    real_size: int  # |D|: the default size of the synthetic set at transfer time
    report: dict = field(default_factory=dict)

    @property
    def calibration_scores(self) -> list[float] | None:
        """p_real of the held-out real inputs (what the calibrated filter's threshold is a quantile of); None for a
        kit made without held-out data or before they were recorded."""
        scores = self.report.get("heldout_real_scores")
        return [float(x) for x in scores] if scores else None

    @property
    def warnings(self) -> list[str]:
        return list(self.report.get("warnings") or [])

    def save(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.discriminator.save(path / DISCRIMINATOR_DIR)
        lines = [json.dumps({"prompt": p, "completion": c}) for p, c in self.seeds]
        (path / SEEDS_FILE).write_text("".join(line + "\n" for line in lines))
        meta = {"task_name": self.task_name, "real_size": self.real_size, "report": self.report}
        (path / KIT_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))

    def to_files(self) -> dict[str, bytes]:
        """The kit as registry files: the discriminator's PEFT files at the top (so the version is a plain adapter
        anyone can load) and the rest under kit/ (seeds, task name, real-set size, report)."""
        config_json, weights = self.discriminator.to_bytes()
        lines = [json.dumps({"prompt": p, "completion": c}) for p, c in self.seeds]
        meta = {"task_name": self.task_name, "real_size": self.real_size, "report": self.report}
        return {"adapter_config.json": config_json, "adapter_model.safetensors": weights,
                f"kit/{SEEDS_FILE}": "".join(line + "\n" for line in lines).encode(),
                f"kit/{KIT_FILE}": json.dumps(meta, sort_keys=True).encode()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> "Kit":
        missing = {f"kit/{KIT_FILE}", f"kit/{SEEDS_FILE}", "adapter_config.json", "adapter_model.safetensors"} - set(files)
        if missing:
            raise ValueError(f"not a transfer kit: missing {sorted(missing)}")
        meta = json.loads(files[f"kit/{KIT_FILE}"])
        seeds = [json.loads(line) for line in files[f"kit/{SEEDS_FILE}"].decode().splitlines() if line.strip()]
        return cls(discriminator=Adapter.from_bytes(files["adapter_config.json"], files["adapter_model.safetensors"]),
                   seeds=[(s["prompt"], s["completion"]) for s in seeds], task_name=meta["task_name"],
                   real_size=int(meta["real_size"]), report=meta.get("report", {}))

    @classmethod
    def load(cls, path) -> "Kit":
        path = Path(path)
        meta = json.loads((path / KIT_FILE).read_text())
        seeds = [json.loads(line) for line in (path / SEEDS_FILE).read_text().splitlines() if line.strip()]
        return cls(discriminator=Adapter.from_dir(path / DISCRIMINATOR_DIR),
                   seeds=[(s["prompt"], s["completion"]) for s in seeds], task_name=meta["task_name"],
                   real_size=int(meta["real_size"]), report=meta.get("report", {}))


def check_fits(adapter: Adapter, model, role: str) -> None:
    """ValueError when `adapter` cannot be applied to `model` (e.g. the source adapter passed with the wrong base)."""
    problems = adapter.mismatches(module_shapes(model))
    if problems:
        raise ValueError(f"the {role} adapter does not fit the {role} base: {'; '.join(problems[:3])}")


def _split(items: list[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """(train, held-out), shuffled; a positive fraction holds out at least one item and keeps at least one."""
    items = list(items)
    rng.shuffle(items)
    held = 0 if fraction == 0 else min(len(items) - 1, max(1, round(fraction * len(items))))
    return items[held:], items[:held]


def make_kit(source_adapter: Adapter, source_model, source_tokenizer, real_pairs: list[tuple[str, str]],
             config: KitConfig | None = None, progress: Progress | None = None,
             source_base_name: str | None = None) -> Kit:
    """Keep `config.seeds` seed examples of `real_pairs` and train the discriminator on the source base.

    - source_adapter: the adapter the kit is for; it must fit source_model, and its base name (or
      source_base_name) becomes the discriminator's base_model_name_or_path.
    - progress stages: "generating synthetic inputs" (drawn, total), "training discriminator" (step, steps,
      {"loss", "lr"}), "scoring held-out" (done, total). Raising lora.progress.Cancelled stops it, base unwrapped.
    - report: sizes (real, seeds, synthetic, train/held-out per class), held-out accuracy overall and per class,
      the discriminator's loss curve, parameter count and file size, and seconds per stage.
    """
    with caller_rng_preserved(source_model):
        return _make_kit(source_adapter, source_model, source_tokenizer, real_pairs, config, progress,
                         source_base_name)


def _make_kit(source_adapter, source_model, source_tokenizer, real_pairs, config, progress,
              source_base_name) -> Kit:
    config = config or KitConfig()
    progress = progress or silent
    pairs = [(str(p), str(c)) for p, c in real_pairs]
    if len(pairs) < config.seeds:
        raise ValueError(f"seeds={config.seeds} but only {len(pairs)} real examples were given")
    if config.heldout_fraction > 0 and len(pairs) < 2:
        raise ValueError("holding out real examples needs at least 2 of them (or heldout_fraction=0)")
    check_fits(source_adapter, source_model, "source")
    base_name = source_base_name or source_adapter.base_model
    rng = random.Random(config.seed)
    seeds = rng.sample(pairs, config.seeds)
    seconds: dict[str, float] = {}

    n_synthetic = config.synthetic or len(pairs)
    draw = candidate_drawer(source_model, source_tokenizer, [p for p, _ in seeds], temperature=config.temperature,
                            top_p=config.top_p, max_new_tokens=config.max_new_tokens,
                            batch_size=config.candidate_batch_size, seed=rng.randrange(2**31))
    synthesis = collect(draw, None, n_synthetic, max_attempts=ATTEMPTS_PER_SYNTHETIC * n_synthetic,
                        batch_size=config.candidate_batch_size, progress=progress,
                        stage="generating synthetic inputs")
    seconds.update(synthesis.seconds)

    real_train, real_held = _split([p for p, _ in pairs], config.heldout_fraction, rng)
    synthetic_train, synthetic_held = _split(synthesis.kept, config.heldout_fraction, rng)
    start = time.perf_counter()
    trained = train_discriminator(source_model, source_tokenizer, real_train, synthetic_train, config,
                                  base_name=base_name, progress=progress)
    seconds["training discriminator"] = time.perf_counter() - start
    discriminator = trained.adapter

    start = time.perf_counter()
    held = real_held + synthetic_held
    scores = p_real(source_model, source_tokenizer, discriminator, held, config.task_name).tolist() if held else []
    if held:
        progress("scoring held-out", len(held), len(held))
    seconds["scoring held-out"] = time.perf_counter() - start
    real_scores, synthetic_scores = scores[: len(real_held)], scores[len(real_held):]
    quality = heldout_quality(real_scores, synthetic_scores)
    warning = chance_warning(quality, len(held))

    weights = discriminator.to_bytes()[1]
    report = {
        "task_name": config.task_name,
        "source_base": base_name,
        "real_size": len(pairs),
        "seeds": config.seeds,
        "synthetic_size": len(synthesis.kept),
        "synthetic_drawn": synthesis.drawn,
        "synthetic_empty": synthesis.empty,
        "synthetic_sample": synthesis.kept[:10],  # what the negatives look like, for a person reading the report
        "train_real": len(real_train),
        "train_synthetic": len(synthetic_train),
        "heldout_real": len(real_held),
        "heldout_synthetic": len(synthetic_held),
        # accuracy at p = 0.5 over both held-out classes, per class (real accepted, synthetic rejected), balanced
        # (mean of the two) with its 95 % interval, and the AUROC of the scores
        **quality,
        # the calibration: p_real of every held-out real input (a transfer's threshold is a quantile of these), and
        # what a few quantiles would let through of the held-out synthetic inputs
        "heldout_real_scores": sorted(real_scores),
        "heldout_synthetic_scores": sorted(synthetic_scores),
        "calibration": calibration_table(real_scores, synthetic_scores),
        "warnings": [warning] if warning else [],
        "loss": trained.losses,
        "final_loss": trained.losses[-1],
        "discriminator_parameters": discriminator.num_parameters(),
        "discriminator_bytes": len(weights),
        "seconds": seconds,
        "time_s": sum(seconds.values()),
        "config": config.model_dump(),
    }
    return Kit(discriminator=discriminator, seeds=seeds, task_name=config.task_name, real_size=len(pairs),
               report=report)
