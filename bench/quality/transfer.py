"""Trans-LoRA (issue 21): is an adapter moved to another base without its data at least as good as what we had?

Per task: the source LoRA converged on the source base; its kit (`transfer_kit` on the train split: discriminator
+ seeds); the transfer to the target base (filtered synthetic data) and the ablations (unfiltered, seeds only);
as the ceiling a LoRA converged on the target base with the real data; both bases alone. Everything scored on the
same test items. Goals: transferred >= max(source LoRA, target base alone) per task ("lossless"), not "not held" on
>= 4 of 5 tasks; the discriminator's held-out accuracy >= 0.8; the paper's ablations (filtered >= unfiltered,
filtered >= seeds only).
"""
from __future__ import annotations

import math

from bench.quality.protocol import Run
from bench.quality.stats import NOT_HELD, Goal, accuracy, check, fixed

LOSSLESS = Goal("transferred >= max(source LoRA, target base alone)", ("transferred", "source", "target alone"),
                lambda m: m["transferred"] - max(m["source"], m["target alone"]))
GOALS = [
    LOSSLESS,
    Goal("filtered >= unfiltered (ablation)", ("transferred", "unfiltered"), lambda m: m["transferred"] - m["unfiltered"]),
    Goal("filtered >= seeds only (ablation)", ("transferred", "seeds_only"), lambda m: m["transferred"] - m["seeds_only"]),
]
SYSTEMS = ["source base alone", "source", "target alone", "transferred", "unfiltered", "seeds_only",
           "target LoRA (real data)"]


def _scalars(report: dict, prefix: str = "") -> dict:
    """The top-level numbers of a method's report (acceptance rate, sizes, MMD, ...), for the stats table."""
    return {prefix + k: v for k, v in report.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run(r: Run, tasks) -> None:
    s, cfg = r.scale, r.scale.transfer
    kit_params = {**cfg["kit"], **r.overrides.get("transfer_kit", {})}
    job_params = {**cfg["job"], **r.overrides.get("transfer", {})}
    scores: dict[str, dict[str, list[int]]] = {}
    stats_rows, goals = {}, []
    for task in tasks:
        r.log(f" [{task.name}]")
        got: dict[str, list[int]] = {}
        stats: dict = {}
        for system, base in (("source base alone", s.base), ("target alone", s.target)):
            c = r.correct(task, base=base, label=f"{system} on {task.name}")
            if c is not None:
                got[system] = c
        source = r.converged(s.base, task, f"{task.name}-{s.base}")
        if source.test is not None:
            got["source"] = source.test
        ceiling = r.converged(s.target, task, f"{task.name}-{s.target}")
        if ceiling.test is not None:
            got["target LoRA (real data)"] = ceiling.test
        if source.ref is not None:
            kit = r.svc.job({"kind": "transfer_kit", "inputs": [source.ref], "output": f"q/{task.name}-kit",
                             "params": {"dataset": r.split(task, "train"), "task_name": task.name, **s.lora,
                                        **kit_params}}, label=f"kit {task.name}")
            kit_ref = kit["results"][0] if kit["state"] == "succeeded" else None
            if kit_ref:
                report = r.svc.version("adapters", kit_ref)["metrics"].get("kit", {})
                stats.update(_scalars(report, "kit "))
                heldout = report.get("heldout_balanced_accuracy", report.get("heldout_accuracy"))
                if heldout is not None:
                    goals.append(fixed("discriminator held-out accuracy >= 0.8", heldout - 0.8, task=task.name))
            else:
                stats["error"] = f"kit: {kit['error']['message']}"
            for mode in ["filtered", *cfg["ablations"]] if kit_ref else []:
                job = r.svc.job({"kind": "transfer", "inputs": [source.ref], "output": f"q/{task.name}-{mode}",
                                 "params": {"target_base": s.target, "kit": kit_ref, "data": mode, **s.lora,
                                            **job_params}}, label=f"transfer {task.name} ({mode})")
                system = "transferred" if mode == "filtered" else mode
                if job["state"] != "succeeded":
                    stats[f"error {mode}"] = job["error"]["message"]
                    continue
                if mode == "filtered":
                    stats.update(_scalars(r.svc.version("adapters", job["results"][0])["metrics"].get("transfer", {})))
                    stats["transfer job s"] = job["wall_s"]
                c = r.correct(task, version=job["results"][0], label=f"{system} on {task.name}")
                if c is not None:
                    got[system] = c
        scores[task.name] = got
        stats_rows[task.name] = stats
        _tables(r, tasks, scores, stats_rows)
        r.report.write()
    for goal in GOALS:
        if all(name in SYSTEMS[:4] or name in cfg["ablations"] for name in goal.systems):
            goals.extend(check(goal, scores))
    goals.append(tasks_goal(goals, len(tasks)))
    r.report.goals(goals)


def tasks_goal(goals: list[dict], n_tasks: int) -> dict:
    """The goal over all tasks, from the per-task lossless verdicts: not "not held" on >= 80 % of the tasks (4 of 5).
    Computed from verdicts alone, so reports that each ran some of the tasks can be combined (bench.quality.combine)."""
    need = math.ceil(0.8 * n_tasks)
    kept = sum(g["verdict"] != NOT_HELD for g in goals if g["goal"] == LOSSLESS.text and g["task"] is not None)
    return fixed(f"lossless held or undecided on >= {need} of {n_tasks} tasks", kept - need)


def _tables(r: Run, tasks, scores, stats_rows) -> None:
    r.report.data["tables"] = []
    names = [t.name for t in tasks if t.name in scores]
    r.report.table(f"{r.scale.base} -> {r.scale.target}: exact match on each task's test split", names,
                   [{"system": system, "scores": {t: accuracy(scores[t][system]) if system in scores[t] else None
                                                  for t in names}} for system in SYSTEMS],
                   note="source = the converged LoRA on the source base; transferred = filtered synthetic data; "
                        "unfiltered / seeds_only = the ablations; target LoRA (real data) = the ceiling.")
    r.report.details("Kits and transfers (the jobs' own reports)", stats_rows)
