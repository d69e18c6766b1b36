"""ICM-LoRA (issue 22): are generated adapters worth using, for unseen family members and at a fraction of the
storage?

Per family (add_constant k = 1..9 holding out 3, 5, 7; caesar_shift k = 1..5 holding out 2, 4 at the cpu scale):
every member's LoRA converged with checkpoints along its run (its trajectory); a hidden-state generator and a
text generator trained on the seen members; adapters generated for every held-out member and for a few seen ones
(hidden s=1, hidden best-of-N by likelihood on the member's examples, text s=1), and three baselines for each
held-out member: the nearest seen member's adapter, the weight average of its two seen neighbours, and a subspace
fit (a fitted linear merge of the seen members on the member's examples); as a diagnostic, the mean of the two
neighbours' weight updates (is the member between them where the model computes?). Goals: held-out generated
(best-of-N) >= 90 % of trained and >= each baseline; seen generated >= 95 % of trained; text-conditioned seen
>= 95 % of trained; generator <= 5 % of the bytes of the checkpoints it learned from.
"""
from __future__ import annotations

import math

from bench.quality.protocol import Run
from bench.quality.stats import Goal, accuracy, check, fixed
from bench.quality.tasks import builtin

DESCRIPTIONS = {"caesar_shift": "shift every letter of a word forward by {k} in the alphabet",
                "add_constant": "add {k} to a number"}
GENERATED = "hidden sN"
HELD_OUT_GOALS = [
    Goal("held-out: generated (best of N) >= 90 % of trained", (GENERATED, "trained"),
         lambda m: m[GENERATED] - 0.9 * m["trained"]),
    Goal("held-out: generated >= nearest seen member's adapter", (GENERATED, "nearest seen"),
         lambda m: m[GENERATED] - m["nearest seen"]),
    Goal("held-out: generated >= average of the two seen neighbours", (GENERATED, "neighbour average"),
         lambda m: m[GENERATED] - m["neighbour average"]),
    Goal("held-out: generated >= subspace fit", (GENERATED, "subspace fit"), lambda m: m[GENERATED] - m["subspace fit"]),
]
SEEN_GOALS = [
    Goal("seen: generated (best of N) >= 95 % of trained", (GENERATED, "trained"),
         lambda m: m[GENERATED] - 0.95 * m["trained"]),
    Goal("seen: text-conditioned >= 95 % of trained", ("text s1", "trained"), lambda m: m["text s1"] - 0.95 * m["trained"]),
]
DELTA_AVERAGE = "neighbour average of updates"  # a diagnostic, not a goal's baseline
SYSTEMS = ["base alone", "trained", "hidden s1", GENERATED, "text s1", "nearest seen", "neighbour average",
           DELTA_AVERAGE, "subspace fit"]


def run(r: Run) -> None:
    for family, spec in r.scale.generate["families"].items():
        _family(r, family, spec["members"], spec["held_out"], spec.get("seen_generate"))


def _family(r: Run, family: str, members: list[int], held_out: list[int], seen_generate) -> None:
    s, cfg = r.scale, r.scale.generate
    seen = [k for k in members if k not in held_out]
    seen_generate = seen_generate if seen_generate is not None else seen[1:3]
    tasks = {k: builtin(f"{family}?k={k}", s.n_train, s.n_test) for k in members}
    r.log(f" [{family}: members {members}, held out {held_out}]")
    adapters, scores, details = {}, {tasks[k].name: {} for k in members}, {}

    def put(k, system, items):
        if items is not None:
            scores[tasks[k].name][system] = items

    for k in members:
        c = r.converged(s.base, tasks[k], f"{tasks[k].name}-{s.base}-traj", checkpoints=cfg["checkpoints"])
        adapters[k] = c.ref
        put(k, "trained", c.test)
        put(k, "base alone", r.correct(tasks[k], base=s.base, label=f"base on {tasks[k].name}"))
    if any(adapters[k] is None for k in seen):
        r.report.note(f"{family}: a seen member failed to train; no generator")
        return
    generators = {}
    gen_params = {**cfg["generator"], **r.overrides.get("train_generator", {})}
    for condition in ("hidden_state", "text"):
        params = {**gen_params, "condition": condition}
        if condition == "text":
            params["descriptions"] = [DESCRIPTIONS[family].format(k=k) for k in seen]
        job = r.svc.job({"kind": "train_generator", "inputs": [adapters[k] for k in seen],
                         "output": f"q/{family}-{condition}-gen", "params": params},
                        label=f"train_generator {family} ({condition})")
        detail = details.setdefault(f"{family} {condition}", {"train_generator job s": job["wall_s"]})
        if job["state"] != "succeeded":
            detail["error"] = job["error"]["message"]
            continue
        generators[condition] = job["results"][0]
        report = r.svc.version("generators", generators[condition])["metrics"].get("generator", {})
        detail.update({k: report.get(k) for k in ("size_ratio", "generator_bytes", "checkpoint_bytes", "parameters",
                                                  "checkpoints_used", "basis_directions", "basis_explained",
                                                  "final_recon_posterior_mean")})
        # measured before training (issue 22): can the seen members' conditions tell them apart, in k's order?
        separability = report.get("conditions") or {}
        detail.update({f"condition {k}": separability.get(k) for k in ("spread", "nearest", "pc1_spearman")})
        for row in report.get("member_fidelity") or []:  # seen members: the decode of each one's own condition
            member = row["member"].split("/")[-1].split("@")[0]
            details.setdefault(f"{family} fidelity {condition}", {})[member] = {
                k: round(v, 3) for k, v in row.items() if k in ("weight_error", "recovered")}
    goals = []
    ratio = details.get(f"{family} hidden_state", {}).get("size_ratio")
    if ratio is not None:
        goals.append(fixed(f"{family}: generator <= 5 % of the checkpoints' bytes", 0.05 - ratio))
    gen_overrides = r.overrides.get("generate", {})
    for k in held_out + seen_generate:
        name, examples = tasks[k].name, r.split(tasks[k], "train")
        variants = {"hidden s1": ("hidden_state", {"examples": examples}),
                    GENERATED: ("hidden_state", {"examples": examples, "samples": cfg["samples"],
                                                 "select": "likelihood"}),
                    "text s1": ("text", {"description": DESCRIPTIONS[family].format(k=k)})}
        for system, (condition, params) in variants.items():
            if condition not in generators:
                continue
            job = r.svc.job({"kind": "generate", "inputs": [generators[condition]], "output": f"q/{name}-{system.replace(' ', '-')}",
                             "params": {"seed": 0, **params, **gen_overrides}}, label=f"generate {name} ({system})")
            details.setdefault(f"{family} generate s", {})[f"k={k} {system}"] = job["wall_s"]
            if job["state"] == "succeeded":
                put(k, system, r.correct(tasks[k], version=job["results"][0], label=f"{system} on {name}"))
        if k in held_out:
            _baselines(r, k, seen, adapters, tasks, put)
    _tables(r, family, members, held_out, tasks, scores, details)
    _why_notes(r, family, held_out, tasks, scores, details.get(f"{family} hidden_state", {}))
    goals += [g for goal in HELD_OUT_GOALS for g in check(goal, {tasks[k].name: scores[tasks[k].name]
                                                              for k in held_out})]
    goals += [g for goal in SEEN_GOALS for g in check(goal, {tasks[k].name: scores[tasks[k].name]
                                                          for k in seen_generate})]
    r.report.goals(goals)
    r.report.write()


def _baselines(r: Run, k: int, seen: list[int], adapters: dict, tasks: dict, put) -> None:
    task = tasks[k]
    nearest = min(seen, key=lambda s: (abs(s - k), s))
    put(k, "nearest seen", r.correct(task, version=adapters[nearest], label=f"nearest (k={nearest}) on {task.name}"))
    below, above = [s for s in seen if s < k], [s for s in seen if s > k]
    if below and above:
        pair = [adapters[max(below)], adapters[min(above)]]
        # linear: the mean of the LoRA factors, a point of the span a generator decodes into; cat: the mean of the
        # weight updates (rank 2r), whether the member lies between its neighbours where the model computes
        for system, method, suffix in (("neighbour average", "linear", ""), (DELTA_AVERAGE, "cat", "-deltas")):
            job = r.svc.job({"kind": "merge", "inputs": pair, "output": f"q/{task.name}-neighbours{suffix}",
                             "params": {"method": method, "weights": [0.5, 0.5]}}, label=f"{system} {task.name}")
            if job["state"] == "succeeded":
                put(k, system, r.correct(task, version=job["results"][0], label=f"{system} on {task.name}"))
    fit = {"method": "linear", **r.scale.generate.get("subspace_fit", {}), **r.overrides.get("merge", {})}
    examples = r.split(task, "train")
    try:
        job = r.svc.job({"kind": "merge", "inputs": [adapters[s] for s in seen], "output": f"q/{task.name}-subspace",
                         "params": {**fit, "fit": [examples] * len(seen)}}, label=f"subspace fit {task.name}")
    except RuntimeError as exc:
        r.report.note(f"subspace fit for {task.name} not run: {exc}")
        return
    if job["state"] == "succeeded":
        put(k, "subspace fit", r.correct(task, version=job["results"][0], label=f"subspace fit on {task.name}"))


def _why_notes(r: Run, family: str, held_out: list[int], tasks: dict, scores: dict, generator: dict) -> None:
    """The two measurements that bound this family's goals whatever the generator learns: how well the best mix of
    seen members tried scores on each held-out one (a basis generator decodes into the span of the seen members'
    checkpoints), and what its size share is made of."""
    rows = []
    for k in held_out:
        got = scores[tasks[k].name]
        means = {n: sum(c) / len(c) for n, c in got.items()}  # the values the table shows, without re-bootstrapping
        mixes = {n: means[n] for n in ("neighbour average", DELTA_AVERAGE, "subspace fit") if n in means}
        if mixes and "trained" in means:
            best = max(mixes, key=mixes.get)
            rows.append(f"k={k} {best} {mixes[best]:.3f} (trained {means['trained']:.3f})")
    if rows:
        r.report.note(f"{family}: the best mix of seen members tried on each held-out member: " + "; ".join(rows)
                      + ". A generated adapter is a point of the seen members' span, so these bound what it can "
                      "reach unless its decoder leaves that span.")
    directions, used = generator.get("basis_directions"), generator.get("checkpoints_used")
    if directions and used and generator.get("size_ratio") is not None:
        r.report.note(f"{family}: the generator stores the mean checkpoint (float32) and {directions} basis "
                      f"directions (float16) of the adapter's length against {used} float32 checkpoints, so its "
                      f"share is about (2 + {directions}) / (2 x {used}) = {(2 + directions) / (2 * used):.1%} "
                      f"(measured {generator['size_ratio']:.1%}) whatever it learns: 5 % needs "
                      f"{math.ceil((2 + directions) / 0.1)} kept checkpoints (more per trajectory) or fewer "
                      "directions.")


def _tables(r: Run, family, members, held_out, tasks, scores, details) -> None:
    names = [tasks[k].name for k in members]
    r.report.table(f"{family}: exact match on each member's test split (held out: {held_out})", names,
                   [{"system": system, "scores": {n: accuracy(scores[n][system]) if system in scores[n] else None
                                                  for n in names}} for system in SYSTEMS],
                   note=f"hidden s1 / {GENERATED}: hidden-state condition, one sample / best of N by likelihood on "
                        "the member's examples; text s1: the description; baselines only for held-out members "
                        f"({DELTA_AVERAGE}: the mean of the two neighbours' weight updates, a diagnostic).")
    generators = {c: details[f"{family} {c}"] for c in ("hidden_state", "text") if f"{family} {c}" in details}
    r.report.details(f"{family}: generators (size_ratio = generator bytes / checkpoint bytes)", generators)
    for condition in ("hidden_state", "text"):
        if f"{family} fidelity {condition}" in details:
            r.report.details(f"{family}: {condition} generator, seen members (weight error: 0 = the trained update, "
                             f"1 = none; recovered: share of the trained log-likelihood gain kept)",
                             details[f"{family} fidelity {condition}"])
    if f"{family} generate s" in details:
        r.report.details(f"{family}: generate job seconds (best of N costs N samples + their likelihoods)",
                         {"wall s": details[f"{family} generate s"]})
