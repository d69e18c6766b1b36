"""What every method's benchmark shares: the hub, the tasks as datasets, converged inputs, scoring every item.

A `Run` is one method at one scale against one `bench.service.Service`. `run.split(task, "test")` uploads a split
once and returns its dataset ref; `run.score(...)` runs an `evaluate` job on it and returns the per-item 0/1 scores
(the paired comparisons need items, not means) and records evaluate's items/s for the report's costs;
`run.converged(...)` is the adapter a benchmark starts from.

Converged inputs: a LoRA is trained for `start_steps`, scored on (a sample of) its train split, and trained on to
twice the steps until the train-split exact match stops improving by more than `plateau` (or reaches `solved`, or
the next budget would pass `max_steps`). Each doubling continues the previous candidate (a train job with that
version as its input, for as many steps again, its own linear schedule), so convergence costs the final step count
and no more; a candidate's `steps` is its total. A family member a generator learns from (checkpoints=N) is trained
in one run instead, since its trajectory is the checkpoints of one version. Every job is cached by its body, so a
rerun resumes and the merge benchmark reuses the singles the transfer benchmark trained.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.quality.report import Report
from bench.quality.scales import Scale
from bench.quality.stats import accuracy
from bench.quality.tasks import Task
from bench.service import Service


@dataclass
class Converged:
    ref: str | None  # None when training failed
    steps: int
    train: list[int] | None
    test: list[int] | None
    why: str
    history: list[dict] = field(default_factory=list)


class Run:
    def __init__(self, service: Service, scale: Scale, report: Report, overrides: dict | None = None):
        self.svc, self.scale, self.report = service, scale, report
        self.overrides = overrides or {}  # -p key=value from the command line: the method job's params
        self._eval_rates: list[float] = []
        self._eval_items = 0
        self._eval_seconds = 0.0

    def log(self, text: str) -> None:
        print(text, flush=True)

    # data -------------------------------------------------------------------------------------------------------

    def split(self, task: Task, split: str) -> str:
        return self.svc.dataset(f"q/{task.name}-{split}", task.rows(split))

    def rows_dataset(self, name: str, rows: list[dict]) -> str:
        return self.svc.dataset(f"q/{name}", rows)

    # scoring ----------------------------------------------------------------------------------------------------

    def score(self, task: Task, split: str = "test", version: str | None = None, base: str | None = None,
              gate: str | None = None, limit: int | None = None, label: str = "") -> dict | None:
        """{"correct": [0/1 per item], "gate_weights": [...] (O3 versions, gated), "route_top": [expert per item],
        "routing_s", "routing_share" (routed merges)} of one evaluate job on the task's split: a version, or a base
        alone. None when the job failed (the report then says what is missing)."""
        params = {"dataset": self.split(task, split)}
        if base is not None:
            params["base"] = base
        if gate is not None:
            params["gate"] = gate
        if limit is not None:
            params["limit"] = limit
        job = self.svc.job({"kind": "evaluate", "inputs": [version] if version else [], "params": params},
                           label=label or f"evaluate {version or base} on {task.name}/{split}")
        if job["state"] != "succeeded":
            return None
        data = job["result"]
        out = {}
        for key, value in data.items():
            if key.endswith("/correct"):
                out["correct"] = [int(c) for c in value]
            elif key.endswith("/gate_weights"):
                out["gate_weights"] = value
            elif key.split("/")[-1] in ("route_top", "routing_s", "routing_share"):  # a routed merge
                out[key.split("/")[-1]] = value
            elif key.endswith("/items_per_s") and job.get("wall_s"):
                self._eval_rates.append(value)
        if "correct" not in out:
            raise RuntimeError(f"evaluate job {job['id']} returned no per-item scores: is the worker's code older "
                               f"than bench.quality?")
        self._eval_items += len(out["correct"])
        self._eval_seconds += job.get("wall_s") or 0.0
        return out

    def correct(self, *args, **kwargs) -> list[int] | None:
        result = self.score(*args, **kwargs)
        return None if result is None else result["correct"]

    def eval_costs(self) -> dict:
        """evaluate's cost: generation items/s inside the worker (median over jobs) and the wall time of scoring
        200 items through the API (submit to result) extrapolated from all evaluate jobs this run ran."""
        if not self._eval_rates:
            return {}
        rates = sorted(self._eval_rates)
        per_item = self._eval_seconds / max(self._eval_items, 1)
        return {"evaluate_items_per_s_median": rates[len(rates) // 2], "evaluate_jobs": len(rates),
                "evaluate_wall_s_per_200_items": round(200 * per_item, 2)}

    # inputs -----------------------------------------------------------------------------------------------------

    def lora(self, **extra) -> dict:
        return {**self.scale.lora, **extra}

    def converged(self, base: str, task: Task, name: str, **extra) -> Converged:
        """A LoRA on `base` trained on the task's train split until its train exact match plateaus (module doc).
        `extra` params go to every train job; checkpoints=N saves about N checkpoints along each run (a
        generator's trajectories: checkpoint_every = steps // N)."""
        s = self.scale
        checkpoints = extra.pop("checkpoints", None)
        steps, best, history = s.start_steps, None, []
        train_ds = self.split(task, "train")
        while True:
            previous = history[-1] if history and not checkpoints else None  # continue it (module doc)
            job = self.svc.job({"kind": "train", "output": f"q/{name}",
                                "inputs": [previous["ref"]] if previous else [], "params": {
                "base": base, "dataset": train_ds, "steps": steps - (previous["steps"] if previous else 0),
                **self.lora(**extra), **({"checkpoint_every": max(1, steps // checkpoints)} if checkpoints else {})}},
                label=f"train {name} ({steps} steps{', continued' if previous else ''})")
            if job["state"] != "succeeded":
                return Converged(None, steps, None, None, f"training failed: {job['error']['message']}", history)
            ref = job["results"][0]
            train = self.correct(task, "train", version=ref, limit=s.converge_items, label=f"converge {name}")
            acc = sum(train) / len(train)
            history.append({"steps": steps, "ref": ref, "train": acc, "wall_s": job["wall_s"]})
            improved = best is None or acc > best["acc"] + s.plateau
            if best is None or acc >= best["acc"]:
                best = {"acc": acc, "ref": ref, "steps": steps, "train": train}
            if acc >= s.solved:
                why = f"train split solved ({acc:.2f})"
            elif not improved:
                why = f"plateau (+{acc - history[-2]['train']:.3f} <= {s.plateau} after doubling)"
            elif steps * 2 > s.max_steps:
                why = f"step cap {s.max_steps}"
            else:
                steps *= 2
                continue
            break
        test = self.correct(task, "test", version=best["ref"], label=f"test {name}")
        self.report.input(name, task.name, best["steps"], accuracy(best["train"]),
                          accuracy(test) if test else None, why=why, ref=best["ref"], history=history)
        self.report.write()  # a long run shows every input as soon as it has converged
        return Converged(best["ref"], best["steps"], best["train"], test, why, history)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start
