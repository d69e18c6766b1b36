"""O3 continual unlearning (issue 24): does the adapter forget what it was asked to, on inputs it has not seen,
and leave everything else as it was?

One assistant LoRA converged on all tasks together (their train splits, shuffled), then sequential `unlearn`
requests, each forgetting one task (its train split is the forget set; the tasks still retained are the detector's
reference). After every request each forgotten task is scored on its forget set and its held-out test split, each
retained task on its test split, with the gate on ("auto") and off (the ablation; the scale may add other gates).
Goals per request: forgotten held-out <= base + 0.05 (gated); retained >= 95 % of before (paired); gate weight
>= 0.9 on >= 95 % of held-out forgotten inputs and <= 0.05 on >= 95 % of retained inputs. Before unlearning, every
forgotten task's test accuracy >= 0.5 (else the benchmark could not see a failure to forget).
"""
from __future__ import annotations

import random

import numpy as np

from bench.quality.protocol import Run
from bench.quality.stats import Goal, accuracy, check
from bench.quality.tasks import Task

OPEN, CLOSED = 0.9, 0.05


def _request_goals(k: int) -> dict[str, Goal]:
    g = f"r{k} auto"
    return {
        "forget_test": Goal(f"request {k}: forgotten task held-out <= base + 0.05 (gated)", (g, "base"),
                            lambda m: m["base"] + 0.05 - m[g]),
        "forget_train": Goal(f"request {k}: forget set <= base + 0.05 (gated)", (g, "base"),
                             lambda m: m["base"] + 0.05 - m[g]),
        "retained": Goal(f"request {k}: retained >= 95 % of before (gated)", (g, "before"),
                         lambda m: sum(t[g] - 0.95 * t["before"] for t in m.values()) / len(m), per_task=False),
        "open": Goal(f"request {k}: gate >= {OPEN} on >= 95 % of held-out forgotten inputs", (f"r{k} open",),
                     lambda m: m[f"r{k} open"] - 0.95),
        "closed": Goal(f"request {k}: gate <= {CLOSED} on >= 95 % of retained inputs", (f"r{k} closed",),
                       lambda m: sum(t[f"r{k} closed"] - 0.95 for t in m.values()) / len(m), per_task=False),
    }


KNOWN = Goal("before unlearning: forgotten task held-out >= 0.5", ("before",), lambda m: m["before"] - 0.5)


def _gate_summary(weights: list[float]) -> dict:
    w = np.asarray(weights, dtype=float)
    return {"mean": float(w.mean()), "min": float(w.min()), "p05": float(np.quantile(w, 0.05)),
            "p50": float(np.median(w)), "max": float(w.max()), f"frac >= {OPEN}": float((w >= OPEN).mean()),
            f"frac <= {CLOSED}": float((w <= CLOSED).mean())}


def run(r: Run, tasks: list[Task]) -> None:
    s, cfg = r.scale, r.scale.unlearn
    params = {**cfg["job"], **r.overrides.get("unlearn", {})}
    gates = cfg.get("gates", ["auto", "off"])
    forgotten = [t for t in tasks[:cfg["requests"]]]
    by_name = {t.name: t for t in tasks}
    train = [row for t in tasks for row in t.train]
    mixed = Task("mixed-" + "-".join(t.name[:4] for t in tasks), tuple(random.Random(0).sample(train, len(train))),
                 tuple(row for t in tasks for row in t.test), "+".join(t.source for t in tasks))
    scores: dict[str, dict[str, list[int]]] = {}  # "<task>/<split>" -> system -> items
    keys = [f"{t.name}/{split}" for t in tasks for split in (("train", "test") if t in forgotten else ("test",))]

    def put(key: str, system: str, items) -> None:
        if items is not None:
            scores.setdefault(key, {})[system] = items

    for key in keys:
        name, split = key.split("/")
        put(key, "base", r.correct(by_name[name], split, base=s.base, label=f"base on {key}"))
    assistant = r.converged(s.base, mixed, f"assistant-{s.base}")
    if assistant.ref is None:
        r.report.note(f"the assistant did not train: {assistant.why}")
        return
    for key in keys:
        name, split = key.split("/")
        put(key, "before", r.correct(by_name[name], split, version=assistant.ref, label=f"before on {key}"))
    goals = check(KNOWN, {f"{t.name}/test": scores.get(f"{t.name}/test", {}) for t in forgotten})
    details, version = {}, assistant.ref
    for k, task in enumerate(forgotten, start=1):
        r.log(f" [request {k}: forget {task.name}]")
        gone, kept = forgotten[:k], [t for t in tasks if t not in forgotten[:k]]
        body = {"forget": r.split(task, "train"), **s.lora, **params}
        if kept:  # the detector's AUROC negatives: prompts of the tasks still retained
            body["reference"] = r.rows_dataset(f"retained-{k}-{mixed.name}", [row for t in kept for row in t.train])
        job = r.svc.job({"kind": "unlearn", "inputs": [version], "output": f"q/assistant-{s.base}", "params": body},
                        label=f"unlearn request {k} ({task.name})")
        detail = {"forget": task.name, "unlearn job s": job["wall_s"]}
        details[f"request {k}"] = detail
        if job["state"] != "succeeded":
            detail["error"] = job["error"]["message"]
            r.report.note(f"request {k} failed: {job['error']['message']}; later requests not run")
            break
        version = job["results"][0]
        report = r.svc.version("adapters", version)["metrics"].get("unlearn", {})
        detail["auroc"] = (report.get("detector") or {}).get("auroc")
        overlap = report.get("overlap") or []
        if overlap:
            detail["overlap mean ‖A_k A_tᵀ‖"] = float(np.mean([o["mean_fro"] for o in overlap]))
        weights = {"forgotten": [], "retained": []}
        for gate in gates:
            for key in keys:
                name, split = key.split("/")
                if split == "train" and by_name[name] not in gone:
                    continue  # a forget set is scored once its request has run
                result = r.score(by_name[name], split, version=version, gate=gate,
                                 label=f"r{k} {gate} on {key}")
                put(key, f"r{k} {gate}", None if result is None else result["correct"])
                w = (result or {}).get("gate_weights")
                if gate == "auto" and w is not None and split == "test":
                    side = "forgotten" if by_name[name] in gone else "retained"
                    weights[side] += w
                    indicator = [int(x >= OPEN) for x in w] if side == "forgotten" else [int(x <= CLOSED) for x in w]
                    put(key, f"r{k} {'open' if side == 'forgotten' else 'closed'}", indicator)
        for side, w in weights.items():
            if w:
                detail.update({f"gate on {side} {name}": v for name, v in _gate_summary(w).items()})
        g = _request_goals(k)
        goals += check(g["forget_test"], {f"{t.name}/test": scores.get(f"{t.name}/test", {}) for t in gone})
        goals += check(g["forget_train"], {f"{t.name}/train": scores.get(f"{t.name}/train", {}) for t in gone})
        goals += check(g["open"], {f"{t.name}/test": scores.get(f"{t.name}/test", {}) for t in gone})
        if kept:
            goals += check(g["retained"], {f"{t.name}/test": scores.get(f"{t.name}/test", {}) for t in kept})
            goals += check(g["closed"], {f"{t.name}/test": scores.get(f"{t.name}/test", {}) for t in kept})
        _tables(r, keys, scores, details)
        r.report.write()
    _tables(r, keys, scores, details)
    r.report.goals(goals)


def _tables(r: Run, keys, scores, details) -> None:
    r.report.data["tables"] = []
    systems = list(dict.fromkeys(s for key in keys for s in scores.get(key, {})
                                 if not s.endswith((" open", " closed"))))
    r.report.table("Exact match per task and split (train = the forget set, test = held-out)", keys,
                   [{"system": system, "scores": {k: accuracy(scores[k][system]) if system in scores.get(k, {})
                                                  else None for k in keys}} for system in systems],
                   note="r<k> <gate>: after request k, with the gate on (auto) or off (the plain PEFT files).")
    r.report.details("Requests: detector AUROC and the gate's distribution (not only its mean)", details)
