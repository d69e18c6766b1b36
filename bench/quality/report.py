"""The report a protocol run writes: bench/reports/quality-<method>-<scale>-<stamp>.{json,md}.

The JSON is for scripts: every accuracy is {"value", "ci_low", "ci_high", "n"}, and the top-level "goals" list holds
every goal checked, each {"goal", "task", "verdict", "diff", "ci_low", "ci_high"} (task null for a goal over all
tasks), so a script can read the verdicts without knowing the method. The Markdown is the same content for people.
A run rewrites both files (same stamp) after every stage, so a stopped run still leaves what it measured.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from bench.quality.stats import HELD, NOT_HELD, UNDECIDED

REPORTS = Path(__file__).resolve().parent.parent / "reports"


class Report:
    def __init__(self, method: str, scale: str, out_dir: Path | str = REPORTS, stamp: str | None = None,
                 config: dict | None = None):
        self.out_dir = Path(out_dir)
        self.stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
        self.data = {"method": method, "scale": scale, "stamp": self.stamp, "status": "running",
                     "config": config or {}, "inputs": [], "tables": [], "details": [], "goals": [], "costs": {},
                     "notes": []}
        self.started = time.time()

    @property
    def path(self) -> Path:
        return self.out_dir / f"quality-{self.data['method']}-{self.data['scale']}-{self.stamp}"

    def input(self, name: str, task: str, steps: int, train: dict | None, test: dict | None, **extra) -> None:
        """A converged input (an adapter a benchmark starts from): its train- and test-split accuracies."""
        self.data["inputs"].append({"name": name, "task": task, "steps": steps, "train": train, "test": test,
                                    **extra})

    def table(self, title: str, columns: list[str], rows: list[dict], note: str = "") -> None:
        """rows: {"system", "scores": {column: accuracy | None}, ...extra}; one table per comparison."""
        self.data["tables"].append({"title": title, "columns": columns, "rows": rows, "note": note})

    def details(self, title: str, columns: dict[str, dict]) -> None:
        """Numbers a method reports per column (a task, a request): {column: {name: value}}; shown one row per name.
        Replaces an earlier block with the same title, so a run can refresh it after every task."""
        self.data["details"] = [d for d in self.data["details"] if d["title"] != title]
        self.data["details"].append({"title": title, "columns": columns})

    def goals(self, entries: list[dict]) -> None:
        self.data["goals"].extend(entries)

    def note(self, text: str) -> None:
        self.data["notes"].append(text)

    def write(self, status: str | None = None) -> Path:
        if status:
            self.data["status"] = status
        self.data["wall_s"] = round(time.time() - self.started, 1)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path.with_suffix(".json").write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        self.path.with_suffix(".md").write_text(markdown(self.data))
        return self.path.with_suffix(".md")


def fmt_acc(acc: dict | None) -> str:
    if acc is None:
        return "—"
    return f"{acc['value']:.3f} [{acc['ci_low']:.2f}, {acc['ci_high']:.2f}]"


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict) and {"value", "ci_low", "ci_high"} <= set(value):
        return fmt_acc(value)
    return str(value)


def markdown(data: dict) -> str:
    counts = {v: sum(g["verdict"] == v for g in data["goals"]) for v in (HELD, UNDECIDED, NOT_HELD)}
    lines = [f"# Quality protocol: {data['method']}, scale {data['scale']} ({data['stamp']}, {data['status']})", "",
             f"Goals: {counts[HELD]} held, {counts[UNDECIDED]} undecided, {counts[NOT_HELD]} not held; "
             f"wall {data.get('wall_s', 0):.0f} s.", "",
             "Accuracies are exact match with a 95 % bootstrap interval over items, `value [low, high]`; n per task "
             "is in the column header. A goal's diff is positive when it holds; its interval is a paired bootstrap "
             "over the same items (held: all >= 0; not held: all < 0; undecided: straddles 0).", ""]
    if data["config"]:
        lines += ["Config: `" + json.dumps(data["config"], sort_keys=True) + "`", ""]
    if data["inputs"]:
        lines += ["## Converged inputs", "", "| input | task | steps | train | test | plateau |", "|---|---|---|---|---|---|"]
        for i in data["inputs"]:
            lines.append(f"| {i['name']} | {i['task']} | {i['steps']} | {fmt_acc(i['train'])} | {fmt_acc(i['test'])} "
                         f"| {_fmt(i.get('why'))} |")
        lines.append("")
    for t in data["tables"]:
        extras = sorted({k for r in t["rows"] for k in r if k not in ("system", "scores")})
        ns = {c: next((r["scores"][c]["n"] for r in t["rows"] if r["scores"].get(c)), None) for c in t["columns"]}
        heads = [f"{c} (n={ns[c]})" if ns[c] else c for c in t["columns"]]
        lines += [f"## {t['title']}", ""] + ([t["note"], ""] if t["note"] else [])
        lines += ["| system | " + " | ".join(heads + extras) + " |", "|---" * (1 + len(heads) + len(extras)) + "|"]
        for r in t["rows"]:
            cells = [fmt_acc(r["scores"].get(c)) for c in t["columns"]] + [_fmt(r.get(k)) for k in extras]
            lines.append(f"| {r['system']} | " + " | ".join(cells) + " |")
        lines.append("")
    for d in data.get("details", []):
        cols = list(d["columns"])
        keys = list(dict.fromkeys(k for c in cols for k in d["columns"][c]))
        lines += [f"## {d['title']}", "", "| | " + " | ".join(cols) + " |", "|---" * (1 + len(cols)) + "|"]
        lines += [f"| {k} | " + " | ".join(_fmt(d["columns"][c].get(k)) for c in cols) + " |" for k in keys] + [""]
    if data["goals"]:
        lines += ["## Goals", "", "| goal | task | verdict | diff | 95 % interval |", "|---|---|---|---|---|"]
        for g in data["goals"]:
            interval = "—" if g["ci_low"] is None else f"[{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]"
            verdict = g["verdict"] + (f" (missing: {', '.join(g['missing'])})" if g.get("missing") else "")
            lines.append(f"| {g['goal']} | {g['task'] or 'all'} | {verdict} | "
                         f"{'—' if g['diff'] is None else format(g['diff'], '+.3f')} | {interval} |")
        lines.append("")
    if data["costs"]:
        lines += ["## Costs", ""] + [f"- {k}: {_fmt(v)}" for k, v in data["costs"].items()] + [""]
    if data["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    return "\n".join(lines)
