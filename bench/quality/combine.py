"""Combine transfer reports that each ran some of the tasks (`--task`) into the report one run of all of them writes.

Why: at cpu scale one transfer task costs about 45 minutes on 2 cores (the source and the ceiling converged, a kit,
three transfers, eight scorings), so the five tasks do not fit one session, and the benchmark cache does not outlive
the machine. Each session runs a task or two and commits its report; this joins them:

    python -m bench.quality.combine bench/reports/quality-transfer-cpu-A.json ... [--out DIR]

Every per-task number (accuracies with their intervals, per-task goals with their paired intervals) is taken as it
was measured; only the goal over all tasks is recomputed, from the per-task verdicts. Reports are refused when they
do not describe the same experiment (scale, config, param overrides) or when a task appears twice: keep one run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.quality import transfer
from bench.quality.report import REPORTS, markdown

SAME = ("method", "scale")


def _experiment(data: dict) -> dict:
    """What must agree between reports for their numbers to sit in one table: the config less the task list."""
    return {k: v for k, v in data["config"].items() if k != "tasks"}


def _tasks(data: dict) -> list[str]:
    return list(dict.fromkeys(c for t in data["tables"] for c in t["columns"]))


def combine(reports: list[dict], stamp: str | None = None) -> dict:
    """The combined report data (same JSON shape as a run's); ValueError naming what disagrees."""
    if len(reports) < 2:
        raise ValueError("give at least two reports to combine")
    first = reports[0]
    if first["method"] != "transfer":
        raise ValueError(f"only transfer reports combine (per-task goals); got {first['method']!r}")
    seen: dict[str, str] = {}
    for data in reports:
        for key in SAME:
            if data[key] != first[key]:
                raise ValueError(f"report {data['stamp']}: {key} {data[key]!r}, not {first[key]!r}")
        if _experiment(data) != _experiment(first):
            raise ValueError(f"report {data['stamp']}: its config differs from {first['stamp']}'s (scale, lora, "
                             f"params or overrides), so its numbers are a different experiment")
        for task in _tasks(data):
            if task in seen:
                raise ValueError(f"task {task!r} is in both {seen[task]} and {data['stamp']}: keep one of the runs")
            seen[task] = data["stamp"]
    out = {"method": first["method"], "scale": first["scale"], "stamp": stamp or time.strftime("%Y%m%d-%H%M%S"),
           "status": "done" if all(d["status"] == "done" for d in reports) else "incomplete",
           "config": {**first["config"], "tasks": [t for d in reports for t in (d["config"].get("tasks") or [])]
                      or None, "combined_from": [d["stamp"] for d in reports]},
           "inputs": [i for d in reports for i in d["inputs"]],
           "tables": _tables([t for d in reports for t in d["tables"]]),
           "details": _details([b for d in reports for b in d["details"]]),
           "costs": {f"{k} ({d['stamp']})": v for d in reports for k, v in d["costs"].items()},
           "notes": [f"combined from {len(reports)} runs, each on some of the tasks: "
                     + ", ".join(f"{d['stamp']} ({', '.join(_tasks(d))}; {d['status']})" for d in reports)]
                    + [f"{d['stamp']}: {n}" for d in reports for n in d["notes"]],
           "wall_s": round(sum(d.get("wall_s", 0) for d in reports), 1)}
    per_task = [g for d in reports for g in d["goals"] if g["task"] is not None]
    out["goals"] = per_task + [transfer.tasks_goal(per_task, len(seen))]
    return out


def _tables(tables: list[dict]) -> list[dict]:
    """Tables with the same title become one: the task columns side by side, each system's scores joined."""
    by_title: dict[str, dict] = {}
    for table in tables:
        merged = by_title.setdefault(table["title"], {**table, "columns": [], "rows": []})
        merged["columns"] += [c for c in table["columns"] if c not in merged["columns"]]
        rows = {r["system"]: r for r in merged["rows"]}
        for row in table["rows"]:
            if row["system"] in rows:
                rows[row["system"]]["scores"].update(row["scores"])
            else:
                merged["rows"].append({**row, "scores": dict(row["scores"])})
    return list(by_title.values())


def _details(blocks: list[dict]) -> list[dict]:
    """Detail blocks with the same title become one, their per-task columns side by side."""
    by_title: dict[str, dict] = {}
    for block in blocks:
        by_title.setdefault(block["title"], {**block, "columns": {}})["columns"].update(block["columns"])
    return list(by_title.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="quality-transfer-<scale>-<stamp>.json files")
    parser.add_argument("--out", type=Path, default=REPORTS, help="directory for the combined report")
    args = parser.parse_args(argv)
    try:
        data = combine([json.loads(p.read_text()) for p in args.reports])
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as exc:
        parser.error(str(exc))
    path = args.out / f"quality-{data['method']}-{data['scale']}-{data['stamp']}"
    args.out.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(data))
    print(path.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
