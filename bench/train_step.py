"""Train-step time with the loss computed from the labelled positions' logits only (lora.training.labelled_logits)
against the full logits the loop computed before, on the real small bases: same model, LoRA, batch and seed, the
two variants interleaved in one process so machine load hits both alike.

    python -m bench.train_step [--bases smollm2 gemma3-270m] [--steps 6] [--task boolean_expressions]

Prints medians and the ratio, and writes bench/reports/train-step-<stamp>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lora.bases import load_base
from lora.tasks import load_task
from lora.training import IGNORE, TrainConfig, collate, completion_loss_sum, encode_pair
from lora.wrapping import wrapped

REPORTS = Path(__file__).parent / "reports"


def full_loss_sum(model, batch):
    """The loop's loss before labelled_logits: every position projected onto the vocabulary."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                             targets.reshape(-1), ignore_index=IGNORE, reduction="sum")
    return loss, int((targets != IGNORE).sum())


def measure(spec: str, task: str, steps: int, batch_size: int = 8, max_len: int = 128) -> dict:
    model, tok = load_base(spec)
    pairs = load_task(f"builtin:{task}?n=64&seed=0").pairs()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    batches = [collate([encode_pair(tok, p, c, max_len) for p, c in pairs[i:i + batch_size]], pad)
               for i in range(0, batch_size * steps, batch_size)]
    config = TrainConfig(rank=8)
    times = {"full": [], "labelled": []}
    losses = {"full": [], "labelled": []}
    with wrapped(model, config.lora_config(spec), None) as peft_model:
        peft_model.train()
        for batch in [batches[0]] + batches:  # the first pass warms up; dropped below
            for name, fn in (("full", full_loss_sum), ("labelled", completion_loss_sum)):
                start = time.perf_counter()
                loss, n = fn(peft_model, batch)
                (loss / n).backward()
                times[name].append(time.perf_counter() - start)
                losses[name].append(float(loss))
                peft_model.zero_grad(set_to_none=True)
    times = {k: v[1:] for k, v in times.items()}
    width = statistics.median(b["input_ids"].shape[1] for b in batches)
    labelled = statistics.median(int((b["labels"][:, 1:] != IGNORE).any(0).sum()) for b in batches)
    full, kept = statistics.median(times["full"]), statistics.median(times["labelled"])
    return {"base": spec, "task": task, "batch": batch_size, "steps": len(times["full"]),
            "median_width": width, "median_positions_projected": labelled,
            "full_s": round(full, 3), "labelled_s": round(kept, 3), "speedup": round(full / kept, 2),
            "max_loss_diff": max(abs(a - b) for a, b in zip(losses["full"], losses["labelled"]))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bases", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--task", action="append", default=None)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    rows = [measure(b, t, args.steps) for b in args.bases for t in (args.task or ["boolean_expressions",
                                                                                  "word_sorting"])]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"train-step-{stamp}.json").write_text(json.dumps(rows, indent=2))
    lines = ["# Train step (forward + backward, batch 8): full logits vs labelled positions only", "",
             f"torch threads {torch.get_num_threads()}; medians over {args.steps} steps after one warm-up, the two "
             "variants interleaved in one process.", "",
             "| base | task | width | positions projected | full s | labelled s | speedup | max loss diff |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['base']} | {r['task']} | {r['median_width']} | {r['median_positions_projected']} | "
                     f"{r['full_s']} | {r['labelled_s']} | {r['speedup']}x | {r['max_loss_diff']:.2e} |")
    (REPORTS / f"train-step-{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
