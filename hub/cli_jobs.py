"""Job commands: `jobs submit|kinds|ls|show|wait|logs|cancel|retry`, one command per method (`train`, `evaluate`,
`merge`, `transfer-kit`, `transfer`, `unlearn`, `infer`, `train-generator`, `generate`) and `workers`.

A job id may be given by any unique prefix (git-style; the CLI shows 8 characters). Waiting follows the job's events
with a progress bar; a hub that goes away meanwhile is waited for (the job runs on in the workers), and if it does
not come back the command says how to pick the job up again with `jobs wait ID`.
"""
from __future__ import annotations

import json
import time

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress
from rich.table import Table

from hub.cli_common import JSON, SHORT_ID, client, console, err, fail, get_or_fail, print_json, split_ref
from hub.cli_params import (PARAM, WAIT, collect, field_of, kinds_table, option, params_table, parse_params,
                            parse_value, required_option)
from hub.client import ClientError, HubClient

jobs_app = typer.Typer(help="Jobs: submit, kinds, ls, show, wait, logs, cancel, retry.", no_args_is_help=True)
COMMANDS: list[tuple[str | None, object]] = []  # top-level commands, registered on the app by hub.cli


def command(name: str | None = None):
    def register(fn):
        COMMANDS.append((name, fn))
        return fn
    return register


# ------------------------------------------------------------------ jobs

def _kind(c: HubClient, kind: str) -> dict:
    kinds = {k["name"]: k for k in c.get("/api/v1/job-kinds")["items"]}
    if kind not in kinds:
        fail(f"unknown job kind {kind!r}; one of {', '.join(kinds)}")
    return kinds[kind]


def _submit(kind: str, inputs: list[str], params: dict, into: str | None, wait: bool) -> dict:
    output = None
    if into:
        namespace, name, _ = split_ref(into)
        output = {"namespace": namespace, "name": name}
        inputs = [ref if "/" in ref else f"{namespace}/{ref}" for ref in inputs]
    with client() as c:
        try:
            job = c.submit(kind, inputs, params, output)
        except ClientError as exc:
            fail(exc.detail)
        console.print(f"submitted {kind} job {job['id']}", highlight=False)  # in full once; any prefix works
        if wait:
            job = _wait(c, job["id"])
            _report(job)
        return job


TERMINAL = ("succeeded", "failed", "cancelled")
RECONNECT_S = 120  # how long a wait rides out a hub that stopped answering (a restart) before giving up


def _wait(c: HubClient, job_id: str) -> dict:
    """Follow the job's events: a progress bar from its progress events, its log lines printed above it.

    The job runs in the workers whatever happens to this connection: when the hub stops answering (restarted,
    upgraded), the wait retries for RECONNECT_S, then says how to pick the job up again instead of failing."""
    after, short, lost_since = 0, job_id[:SHORT_ID], None
    with Progress("[progress.description]{task.description}", BarColumn(), "{task.percentage:>3.0f}%",
                  console=err) as bar:
        task = bar.add_task(short, total=1.0)
        while True:
            try:
                for event in c.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                    after = event["seq"]
                    data = event["data"]
                    if event["type"] == "progress":
                        bar.update(task, completed=data["progress"], description=f"{short} {data['stage'] or ''}")
                    elif event["type"] == "log":
                        bar.console.print(f"  {escape(data['message'])}", highlight=False)
                job = c.job(job_id)
            except (httpx.TransportError, ClientError) as exc:
                if isinstance(exc, ClientError) and exc.status not in (502, 503, 504):
                    raise
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > RECONNECT_S:
                    bar.stop()
                    fail(f"lost the hub at {c.url} for {RECONNECT_S} s while waiting; the job goes on in the "
                         f"workers: `adaptarium jobs wait {short}` follows it again")
                bar.update(task, description=f"{short} (hub not answering; retrying)")
                time.sleep(2)
                continue
            lost_since = None
            if job["state"] in TERMINAL:
                bar.update(task, completed=job["progress"], description=f"{short} {job['state']}")
                return job
            time.sleep(0.5)


def _results(job: dict) -> list[str]:
    """Each result ref with what it names (a kit's adapter and its seed dataset share one name)."""
    objects = job.get("result_objects") or ["adapter"] * len(job["results"])
    return [f"{ref} ({obj})" if obj != "adapter" or len(set(job["results"])) < len(job["results"]) else ref
            for ref, obj in zip(job["results"], objects)]


LONG = 80  # a result value longer than this (per-item strings, score lists) is summarised; --json shows it whole


def _print_result(result: dict) -> None:
    """A job's result as key/value rows: per-item values (an evaluate's `correct` string of 200 digits, its
    `scores` list) become a count, so the numbers a user came for stay on one screen; `--json` prints everything."""
    table = Table(show_header=False, box=None)
    for key, value in result.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) > LONG:
            size = len(value) if isinstance(value, (str, list, dict)) else len(text)
            text = f"({size} {'characters' if isinstance(value, str) else 'items'}; --json shows them)"
        table.add_row(f"[bold]{escape(str(key))}[/bold]", escape(text))
    console.print(table)


def _report(job: dict) -> None:
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(job["state"], "white")
    console.print(f"job {job['id'][:SHORT_ID]} [{colour}]{job['state']}[/{colour}] {', '.join(_results(job))}",
                  highlight=False)
    if job.get("result"):
        _print_result(job["result"])
    if job["error"]:
        err.print(f"[red]{escape(job['error']['type'])}: {escape(job['error']['message'])}[/red]")
    if job["state"] != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("submit")
def jobs_submit(kind: str, inputs: list[str] = typer.Argument(None, help="Input versions ns/name[@ref]."),
                param: list[str] = PARAM,
                into: str = typer.Option(None, help="Output namespace/name, for kinds that publish a version."),
                wait: bool = WAIT):
    """Submit a job of any kind (see `adaptarium jobs kinds KIND`); params are typed by the kind's schema."""
    with client() as c:
        try:
            schema = _kind(c, kind)["params_schema"]
        except ClientError as exc:
            fail(exc.detail)
    _submit(kind, list(inputs or []), parse_params(param, schema), into, wait)


@jobs_app.command("kinds")
def jobs_kinds(kind: str = typer.Argument(None, help="One kind: its parameters with types, defaults and meaning."),
               as_json: bool = JSON):
    """The job kinds this hub runs (inputs, output, essential params), or one kind's parameters."""
    items = get_or_fail("/api/v1/job-kinds")["items"]
    if kind is not None:
        found = [k for k in items if k["name"] == kind]
        if not found:
            fail(f"unknown job kind {kind!r}; one of {', '.join(k['name'] for k in items)}")
        return print_json(found[0]) if as_json else console.print(params_table(found[0]))
    if as_json:
        return print_json({"items": items})
    console.print(kinds_table(items))


# One command per method. Each option is a field of its kind's declaration (hub.job_kinds): its help and default
# come from there, an unset option leaves the declared default to the hub, -p sets any other field, and a field set
# both ways is refused. Options the declaration does not name (--into, --to, --base) say what they stand for.

@command()
def train(task: str = option("train", "task"), dataset: str = option("train", "dataset"),
          base: str = required_option("train", "base"),
          into: str = typer.Option(..., help="Output adapter namespace/name."),
          steps: int = option("train", "steps"), rank: int = option("train", "rank"),
          lr: float = option("train", "lr"),
          continue_from: str = typer.Option(None, "--from", help="An adapter version to continue training (its "
                                            "weights, rank, alpha and targets are the start)."),
          param: list[str] = PARAM, wait: bool = WAIT):
    """Fine-tune a LoRA on a built-in task or a registry dataset, as a job (from scratch, or --from a version)."""
    params = collect("train", {"base": base, "task": task, "dataset": dataset, "steps": steps, "rank": rank,
                               "lr": lr}, param)
    _submit("train", [continue_from] if continue_from else [], params, into, wait)


@command()
def evaluate(version: str, task: str = option("evaluate", "task"), dataset: str = option("evaluate", "dataset"),
             limit: int = option("evaluate", "limit"), param: list[str] = PARAM, wait: bool = WAIT):
    """Score a version (exact match) on a task's test split or a dataset; the scores go into its metrics."""
    params = collect("evaluate", {"task": task, "dataset": dataset, "limit": limit}, param)
    _submit("evaluate", [version], params, None, wait)


@command()
def merge(inputs: list[str] = typer.Argument(..., help="Two or more versions: ns/name[@ref] (or bare names in the "
                                                      "namespace of --into)."),
          into: str = typer.Option(..., help="Output adapter namespace/name."),
          method: str = option("merge", "method"), rank: int = option("merge", "rank"),
          density: float = option("merge", "density"),
          weights: str = option("merge", "weights", help="Comma-separated, one per input."),
          fit: list[str] = option("merge", "fit", "--fit", help=None),
          fit_budget: int = option("merge", "fit_budget"), router: str = option("merge", "router"),
          param: list[str] = PARAM, wait: bool = WAIT):
    """Merge adapters with LoRA-LEGO or a standard method, as a job; with --fit, its coefficients are fitted on
    examples of each input's task (LoraHub-style) and reported in the version's metrics. --method route keeps the
    inputs as experts and routes every request to its own (infer and evaluate show the routing weights)."""
    weights = parse_value("weights", weights, field_of("merge", "weights")) if weights is not None else None
    params = collect("merge", {"method": method, "router": router, "rank": rank, "density": density,
                               "weights": weights, "fit": list(fit) if fit else None, "fit_budget": fit_budget},
                     param)
    _submit("merge", inputs, params, into, wait)


@command(name="transfer-kit")
def transfer_kit(version: str, task: str = option("transfer_kit", "task"),
                 dataset: str = option("transfer_kit", "dataset"),
                 into: str = typer.Option(..., help="Kit name namespace/name (adapter + seed dataset)."),
                 seeds: int = option("transfer_kit", "seeds"), param: list[str] = PARAM, wait: bool = WAIT):
    """Make a Trans-LoRA kit for an adapter version while its data exists (discriminator + seeds)."""
    params = collect("transfer_kit", {"task": task, "dataset": dataset, "seeds": seeds}, param)
    _submit("transfer_kit", [version], params, into, wait)


@command()
def transfer(version: str, to: str = typer.Option(..., "--to", help="The target base."),
             into: str = typer.Option(..., help="Output adapter namespace/name."),
             kit: str = option("transfer", "kit"), evaluate: str = option("transfer", "evaluate"),
             param: list[str] = PARAM, wait: bool = WAIT):
    """Move an adapter to another base with Trans-LoRA (synthetic data filtered by its kit, distilled)."""
    params = collect("transfer", {"target_base": to, "kit": kit, "evaluate": evaluate}, param,
                     flags={"target_base": "--to"})
    _submit("transfer", [version], params, into, wait)


@command()
def unlearn(version: str, forget: str = required_option("unlearn", "forget"),
            into: str = typer.Option(None, help="Output namespace/name (default: the input's, as its next version)."),
            relabel: str = option("unlearn", "relabel"), param: list[str] = PARAM, wait: bool = WAIT):
    """O3 unlearning: the next version forgets a set (orthogonal LoRA + OOD-gated soft load)."""
    namespace, name, _ = split_ref(version)
    params = collect("unlearn", {"forget": forget, "relabel": relabel}, param)
    _submit("unlearn", [version], params, into or f"{namespace}/{name}", wait)


@command()
def infer(target: str = typer.Argument(..., help="A version ns/name[@ref], or a base name with --base."),
          prompts: list[str] = typer.Argument(..., help="One or more prompts."),
          base: bool = typer.Option(False, "--base", help="TARGET is a base model: no adapter."),
          max_new_tokens: int = option("infer", "max_new_tokens"),
          temperature: float = option("infer", "temperature"), gate: str = option("infer", "gate"),
          param: list[str] = PARAM, wait: bool = WAIT):
    """Completions from a version (gated for O3 versions) or a base; prints each with its gate weight."""
    params = collect("infer", {"prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": temperature,
                               "gate": gate, "base": target if base else None}, param)
    inputs = [] if base else [target]
    if not wait:
        _submit("infer", inputs, params, None, False)
        return
    with client() as c:
        try:
            job = c.post("/api/v1/jobs?wait=60", {"kind": "infer", "inputs": inputs, "params": params})
            if job["state"] not in ("succeeded", "failed", "cancelled"):
                job = _wait(c, job["id"])
        except ClientError as exc:
            fail(exc.detail)
    if job["state"] != "succeeded":
        _report(job)
    result = job["result"]
    for i, (prompt, completion) in enumerate(zip(result["prompts"], result["completions"])):
        gate_note = f"  [gate {result['gate_weights'][i]:.3f}]" if "gate_weights" in result else ""
        console.print(f"[bold]{escape(prompt)}[/bold]{escape(completion)}{escape(gate_note)}", highlight=False)


@command(name="train-generator")
def train_generator_cmd(inputs: list[str] = typer.Argument(..., help="The family's adapter versions (trained with "
                                                                     "checkpoint_every)."),
                        into: str = typer.Option(..., help="Generator namespace/name."),
                        condition: str = option("train_generator", "condition"),
                        description: list[str] = typer.Option([], help="One per input, for --condition text."),
                        param: list[str] = PARAM, wait: bool = WAIT):
    """ICM-LoRA: train a generator (CVAE) on a family of adapters' training trajectories."""
    params = collect("train_generator", {"condition": condition, "descriptions": list(description) or None}, param,
                     flags={"descriptions": "--description"})
    _submit("train_generator", inputs, params, into, wait)


@command(name="generate")
def generate_cmd(generator: str, into: str = typer.Option(..., help="Output adapter namespace/name."),
                 examples: str = option("generate", "examples"), description: str = option("generate", "description"),
                 samples: int = option("generate", "samples"), select: str = option("generate", "select"),
                 param: list[str] = PARAM, wait: bool = WAIT):
    """ICM-LoRA: generate an adapter for a new task from a generator version."""
    params = collect("generate", {"examples": examples, "description": description, "samples": samples,
                                  "select": select}, param)
    _submit("generate", [generator], params, into, wait)


JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")  # hub.models.JOB_STATES, without sqlalchemy


@jobs_app.command("ls")
def jobs_ls(state: str = typer.Option(None, help=f"One of {', '.join(JOB_STATES)}."),
            kind: str = typer.Option(None, help="A job kind (see `adaptarium jobs kinds`)."),
            limit: int = typer.Option(50, min=1, max=1000), as_json: bool = JSON):
    """Jobs you can see, newest first."""
    if state is not None and state not in JOB_STATES:
        fail(f"{state!r} is not a job state; one of {', '.join(JOB_STATES)}")
    items = get_or_fail("/api/v1/jobs", state=state, kind=kind, limit=limit)["items"]
    if as_json:
        return print_json({"items": items})
    table = Table("id", "kind", "state", "progress", "created", "results")
    for j in items:
        table.add_row(j["id"][:SHORT_ID], j["kind"], j["state"], f"{j['progress']:.0%}",
                      (j["created_at"] or "")[:19], ", ".join(_results(j)))
    console.print(table)


@command(name="workers")
def workers_ls(as_json: bool = JSON):
    """The worker fleet: each worker's device, queues, status (online / stale / stopped) and current job."""
    items = get_or_fail("/api/v1/workers")["items"]
    if as_json:
        return print_json({"items": items})
    table = Table("name", "status", "device", "queues", "current job", "done", "failed", "heartbeat")
    for w in items:
        named = w.get("device_name") not in (None, "cpu")
        device = f"{w['device']} ({w['device_name']})" if named else w["device"]
        job = w.get("current_job")
        current = "" if not job else "busy (hidden)" if job["hidden"] else f"{job['id'][:SHORT_ID]} {job['kind']}"
        table.add_row(w["name"], w["status"], device, ",".join(w["queues"]), current, str(w["jobs_done"]),
                      str(w["jobs_failed"]), f"{w['heartbeat_age_s']:.0f} s ago")
    console.print(table)


JOB_ID = typer.Argument(..., metavar="ID", help="A job id, or any unique start of one.")


@jobs_app.command("show")
def jobs_show(job_id: str = JOB_ID, as_json: bool = JSON):
    """A job: kind, state, inputs, params, results, error, timings."""
    with client() as c:
        try:
            job = c.job(c.job_id(job_id))
        except ClientError as exc:
            fail(exc.detail)
    if as_json:
        return print_json(job)
    table = Table(show_header=False, box=None)
    rows = [("id", job["id"]), ("kind", job["kind"]), ("state", f"{job['state']} ({job['progress']:.0%}"
                                                                 f"{', ' + job['stage'] if job['stage'] else ''})"),
            ("inputs", ", ".join(job["inputs"]) or "-"),
            ("output", f"{job['output']['namespace']}/{job['output']['name']}" if job["output"] else "-"),
            ("results", ", ".join(_results(job)) or "-"),
            ("params", ", ".join(f"{k}={json.dumps(v)}" for k, v in job["params"].items() if v is not None)),
            ("worker", f"{job['worker'] or '-'}{'  on ' + job['device'] if job['device'] else ''}"),
            ("created", job["created_at"] or "-"), ("started", job["started_at"] or "-"),
            ("finished", job["finished_at"] or "-"), ("attempts", str(job["attempts"]))]
    if job["error"]:
        rows.append(("error", f"{job['error'].get('type')}: {job['error'].get('message')}"))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/bold]", escape(value))
    console.print(table)
    if job.get("result"):
        console.print("[bold]result[/bold]")
        _print_result(job["result"])


@jobs_app.command("wait")
def jobs_wait(job_id: str = JOB_ID):
    """Follow a job until it ends; exits non-zero unless it succeeded."""
    with client() as c:
        try:
            _report(_wait(c, c.job_id(job_id)))
        except ClientError as exc:
            fail(exc.detail)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str = JOB_ID):
    """Cancel a queued job at once, or a running one at its next step."""
    with client() as c:
        try:
            job = c.post(f"/api/v1/jobs/{c.job_id(job_id)}/cancel", {})
        except ClientError as exc:
            fail(exc.detail)
    console.print(f"job {job['id'][:SHORT_ID]} {job['state']}{' (stopping)' if job['state'] == 'running' else ''}")


@jobs_app.command("retry")
def jobs_retry(job_id: str = JOB_ID, wait: bool = WAIT):
    """Run a failed or cancelled job again."""
    with client() as c:
        try:
            full = c.job_id(job_id)
            job = c.post(f"/api/v1/jobs/{full}/retry", {})
            console.print(f"job {job['id'][:SHORT_ID]} {job['state']}")
            if wait:
                _report(_wait(c, full))
        except ClientError as exc:
            fail(exc.detail)


@jobs_app.command("logs")
def jobs_logs(job_id: str = JOB_ID,
              follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends."),
              as_json: bool = JSON):
    """A job's event log: state changes, log lines, metrics, errors."""
    after = 0
    with client() as c:
        try:
            job_id = c.job_id(job_id)
            while True:
                for event in c.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                    after = event["seq"]
                    print(json.dumps(event)) if as_json else console.print(_event_line(event), highlight=False)
                if not follow or c.job(job_id)["state"] in TERMINAL:
                    if follow:  # anything written between the last read and the end
                        for event in c.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                            print(json.dumps(event)) if as_json else console.print(_event_line(event),
                                                                                    highlight=False)
                    return
                time.sleep(0.5)
        except ClientError as exc:
            fail(exc.detail)


def _event_line(event: dict) -> str:
    data = event["data"]
    text = {"log": lambda: data["message"],
            "metric": lambda: f"{data['name']} = {data['value']:.6g}" + (f" (step {data['step']})" if data.get("step") is not None else ""),
            "progress": lambda: f"{data['progress']:.0%} {data.get('stage') or ''}",
            "state": lambda: data["state"] + (f" {' '.join(data['results'])}" if data.get("results") else ""),
            "error": lambda: f"{data.get('type')}: {data.get('message')}\n{data.get('traceback', '')}"}
    return f"{event['at'][11:19] if event['at'] else ''} {event['type']:<8} {text.get(event['type'], lambda: json.dumps(data))()}"


