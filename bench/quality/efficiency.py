"""The worker's training and evaluation code against what a user would write instead (issue 20, item 6).

Train: lora.training.train_lora (what the `train` job runs) against a bare PEFT + transformers loop — get_peft_model,
AdamW, model(**batch).loss, backward, step — on the same model, the same collated batches (batch x sequence
length), dtype and device; median step time after warm-up and completion tokens/s. Evaluate: lora.evaluation.
evaluate_task (what `evaluate` runs) against a bare left-padded batched `model.generate` loop on the same prompts,
items/s, once per dtype (float32 and, on a GPU, bfloat16). Runs in-process, no hub:

    python -m bench.quality.efficiency --base smollm2 --device cuda --out DIR      # gpu_run.sh runs this
    python -m bench.quality.efficiency --base 'tiny:llama?seed=0' --steps 6         # a quick check anywhere
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from bench.quality.report import REPORTS


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _load(spec: str, device: str, dtype: str):
    from lora import device as placement
    from lora.bases import load_base

    placement.use(placement.resolve(device, dtype))
    return load_base(spec)


def train_steps(model, tok, pairs, steps: int, batch: int, max_len: int) -> dict:
    """Step times (s) of train_lora and of the bare loop on the same batches."""
    from peft import LoraConfig, get_peft_model

    from lora.training import TrainConfig, collate, encode_pair, train_lora

    device = next(model.parameters()).device
    stamps = []
    train_lora(model, tok, pairs, TrainConfig(steps=steps, batch_size=batch, max_len=max_len, lr=1e-3),
               progress=lambda stage, done, total, metrics=None: (_sync(device), stamps.append(time.perf_counter())))
    ours = [b - a for a, b in zip(stamps, stamps[1:])][2:]
    examples = [encode_pair(tok, p, c, max_len) for p, c in pairs]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    batches = [collate(examples[i:i + batch], pad) for i in range(0, batch * steps, batch)]
    tokens = statistics.mean(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    bare = []
    peft_model.train()
    for b in batches:
        start = time.perf_counter()
        b = {k: v.to(device) for k, v in b.items()}
        peft_model(**b).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        bare.append(time.perf_counter() - start)
    peft_model.unload()  # the base as it was, for what follows
    ours_s, bare_s = statistics.median(ours), statistics.median(bare[2:])
    return {"worker_step_s": ours_s, "bare_step_s": bare_s, "worker_tokens_per_s": tokens / ours_s,
            "bare_tokens_per_s": tokens / bare_s, "worker_over_bare_throughput": bare_s / ours_s,
            "completion_tokens_per_step": tokens, "batch": batch, "steps": steps}


@torch.no_grad()
def eval_rates(model, tok, examples, batch: int) -> dict:
    """items/s of evaluate_task and of a bare batched greedy generate on the same prompts."""
    from lora.evaluation import evaluate_task

    device = next(model.parameters()).device
    new = max(len(tok(e["completion"], add_special_tokens=False)["input_ids"]) for e in examples) + 2
    ours = evaluate_task(model, tok, None, examples, max_new_tokens=new, batch_size=batch)
    tok.padding_side = "left"
    start = time.perf_counter()
    for i in range(0, len(examples), batch):
        enc = tok([e["prompt"] for e in examples[i:i + batch]], return_tensors="pt", padding=True).to(device)
        model.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.pad_token_id)
    _sync(device)
    bare = len(examples) / (time.perf_counter() - start)
    return {"evaluate_items_per_s": ours["items_per_s"], "bare_generate_items_per_s": round(bare, 2),
            "exact_match": ours["exact_match"], "n": ours["n"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    from lora.tasks import make_task

    task = make_task("word_sorting", n=args.batch * args.steps, test=args.items, seed=0)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    result = {"base": args.base, "device": torch.cuda.get_device_name() if cuda else "cpu", "runs": {}}
    for dtype in (["float32", "bfloat16"] if cuda else ["float32"]):
        model, tok = _load(args.base, "cuda" if cuda else "cpu", dtype)
        result["runs"][dtype] = {"train": train_steps(model, tok, task.pairs(), args.steps, args.batch, args.max_len),
                                 "evaluate": eval_rates(model, tok, task.test, batch=64 if cuda else 16)}
        print(dtype, json.dumps(result["runs"][dtype]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"quality-efficiency-{'cuda' if cuda else 'cpu'}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
