"""`adaptarium`: run the hub (`up`, `worker`, `db upgrade`, `token create|revoke`, `gc`) and use it (`bases add`, `push`,
`pull`, `ls`, `show`, `merge`, `jobs`).

Serving commands work on the database directly; every other command is a client of the REST API (ADAPTARIUM_URL,
ADAPTARIUM_TOKEN), so the CLI sees exactly what the dashboard and other clients see. Only `bases add` imports torch,
inside the command, to compute a base's module shapes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from hub.client import ClientError, HubClient

app = typer.Typer(help="Adaptarium: a registry and job service for LoRA adapters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
bases_app = typer.Typer(help="Base models.", no_args_is_help=True)
jobs_app = typer.Typer(help="Jobs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(bases_app, name="bases")
app.add_typer(jobs_app, name="jobs")
console = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _client() -> HubClient:
    return HubClient()


def _split_ref(text: str) -> tuple[str, str, str]:
    path, _, ref = text.partition("@")
    namespace, slash, name = path.partition("/")
    if not slash or not namespace or not name:
        _fail(f"{text!r} is not namespace/name[@version]")
    return namespace, name, ref or "latest"


def _transfer_bar() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=err)


# ------------------------------------------------------------------ serving

def _ensure_admin_token(settings) -> str:
    """The admin token of this data dir: created on first start, written to DIR/admin-token with mode 600."""
    from hub import auth
    from hub.db import make_engine, make_session_factory

    path = settings.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            token = auth.create_token(session, None, {"read", "write", "admin"})
            session.commit()
    finally:
        engine.dispose()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when `up` exits, even when uvicorn re-raises the signal that stopped it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


DATA_DIR = typer.Option(Path("./adaptarium-data"), envvar="ADAPTARIUM_DATA_DIR",
                        help="Where the database, blobs and broker live (the same for `up` and `token`).")


def _settings(data_dir: Path):
    """Settings for this data dir: its database unless ADAPTARIUM_DATABASE_URL names another."""
    from hub.settings import Settings

    return Settings.from_env({**os.environ, "ADAPTARIUM_DATA_DIR": str(data_dir.resolve())})


@app.command()
def up(data_dir: Path = DATA_DIR,
       port: int = typer.Option(8000), host: str = typer.Option("127.0.0.1"),
       worker: bool = typer.Option(True, help="Also start one worker process on the gpu and cpu queues.")):
    """Run the hub on one machine: API + one worker, SQLite + local blobs + embedded broker unless configured."""
    import uvicorn

    from hub.migrate import upgrade
    from hub.settings import Settings

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ADAPTARIUM_DATA_DIR"] = str(data_dir)
    settings = Settings.from_env()
    upgrade(settings.database_url)
    token = _ensure_admin_token(settings)
    console.print(f"Adaptarium hub on [bold]http://{host}:{port}[/bold]  (data in {data_dir})")
    console.print(f"admin token: [bold]{token}[/bold]  (also in {data_dir / 'admin-token'})")
    child = None
    if worker:
        child = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--queues", "gpu,cpu"],
                                 env=os.environ.copy(), preexec_fn=_die_with_parent)
    try:
        uvicorn.run("hub.api.app:create_app", factory=True, host=host, port=port, log_level="info")
    finally:
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()


@app.command(name="worker")
def worker_cmd(queues: str = typer.Option("gpu,cpu", help="Comma-separated queues to consume."),
               concurrency: int = typer.Option(1),
               device: str = typer.Option(None, help="auto | cpu | cuda | cuda:N (default: ADAPTARIUM_DEVICE or auto: "
                                                     "CUDA when available). One worker process per GPU."),
               dtype: str = typer.Option(None, help="auto | float32 | bfloat16 | float16 for the bases (default: "
                                                    "ADAPTARIUM_DTYPE or auto: bf16 on a GPU that has it, else fp32)."),
               base_cache_gb: float = typer.Option(None, help="Keep at most this many GB of base weights loaded, least "
                                                              "recently used dropped first (default: "
                                                              "ADAPTARIUM_BASE_CACHE_GB; 0 = no bound)."),
               base_cache_bases: int = typer.Option(None, help="... and at most this many bases (default: "
                                                               "ADAPTARIUM_BASE_CACHE_BASES; 0 = no bound).")):
    """Run a Celery worker for jobs (on GPU hosts: --queues gpu --device cuda:N; on CPU hosts: --queues cpu)."""
    from workers.main import WorkerSetupError, run_worker

    try:
        run_worker([q.strip() for q in queues.split(",") if q.strip()], concurrency, device=device, dtype=dtype,
                   base_cache_gb=base_cache_gb, base_cache_bases=base_cache_bases)
    except WorkerSetupError as exc:  # a device/dtype/cache bound the worker cannot honour: say so before any job
        _fail(str(exc))


@db_app.command("upgrade")
def db_upgrade():
    """Bring the database (ADAPTARIUM_DATABASE_URL) to the newest schema."""
    from hub.migrate import upgrade
    from hub.settings import Settings

    upgrade(Settings.from_env().database_url)
    console.print("database is up to date")


@token_app.command("create")
def token_create(namespace: str = typer.Option(None, help="Namespace the token is limited to (all if omitted)."),
                 scope: str = typer.Option("read", help="read, write or admin"), data_dir: Path = DATA_DIR):
    """Create an API token (printed once; only its hash is stored)."""
    from hub import auth
    from hub.db import make_engine, make_session_factory
    from hub.registry import RegistryError

    engine = make_engine(_settings(data_dir).database_url)
    try:
        with make_session_factory(engine)() as session:
            try:
                token = auth.create_token(session, namespace, {scope})
            except RegistryError as exc:
                _fail(exc.detail)
            session.commit()
    finally:
        engine.dispose()
    print(token)


@token_app.command("revoke")
def token_revoke(token: str = typer.Argument(..., help="The token's plaintext, as `token create` printed it."),
                 data_dir: Path = DATA_DIR):
    """Revoke an API token: running API processes answer 401 to it within ADAPTARIUM_TOKEN_CACHE_SECONDS (2 s)."""
    from hub import auth
    from hub.db import make_engine, make_session_factory

    engine = make_engine(_settings(data_dir).database_url)
    try:
        with make_session_factory(engine)() as session:
            if not auth.revoke(session, token.strip()):
                _fail("no such token")
            session.commit()
    finally:
        engine.dispose()
    console.print(f"revoked {token.strip()[:8]}…")


# ------------------------------------------------------------------ registry

@bases_app.command("add")
def bases_add(name: str,
              from_dir: Path = typer.Option(None, help="A Hugging Face model folder (only its config.json is read)."),
              from_gguf: Path = typer.Option(None, help="A GGUF file (its metadata only; workers dequantise it)."),
              from_config: Path = typer.Option(None, help="A config.json alone: no weights, so see --source."),
              tiny: str = typer.Option(None, help="A tiny random model family: llama, qwen2, gemma3."),
              source: str = typer.Option(None, help="Where workers load the weights: dir:/ABS/PATH, gguf:/ABS/FILE, "
                                                    "or a shortcut. Defaults to the --from-dir/--from-gguf path."),
              alias: list[str] = typer.Option([], help="Other names, e.g. the HF id adapters name.")):
    """Register a base model, recording its adaptable modules' shapes from its config alone (no weights loaded)."""
    chosen = [x for x in (from_dir, from_gguf, from_config, tiny) if x]
    if len(chosen) != 1:
        _fail("give exactly one of --from-dir, --from-gguf, --from-config, --tiny")
    if tiny and source:
        _fail("--source does not go with --tiny (a tiny base is rebuilt from its name)")
    from lora import shapes

    if source and (problem := shapes.source_problem(source)):
        _fail(problem)
    try:
        if tiny:
            from lora.bases import architecture, load_base, module_shapes

            spec = f"tiny:{tiny}?seed=0"
            model, _ = load_base(spec)
            arch, found = architecture(model), module_shapes(model)
        else:
            if from_dir:
                config, spec = shapes.config_from_dir(from_dir), f"dir:{from_dir.resolve()}"
            elif from_gguf:
                config, spec = shapes.config_from_gguf(from_gguf), f"gguf:{from_gguf.resolve()}"
            else:
                config, spec = shapes.config_from_file(from_config), ""
            arch, found = shapes.shapes_from_config(config)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    spec = source or spec
    body = {"name": name, "architecture": arch, "source": spec, "aliases": list(alias),
            "module_shapes": {m: list(s) for m, s in found.items()}}
    with _client() as client:
        try:
            base = client.add_base(body)
        except ClientError as exc:
            _fail(exc.detail)
    console.print(f"registered base [bold]{base['name']}[/bold] ({base['architecture']}, "
                  f"{len(base['module_shapes'])} adaptable modules)")
    if not spec:
        console.print("no --source: adapters on this base upload and are shape-checked, but jobs that need its "
                      "weights fail until a worker can load it by its name")


@app.command()
def push(directory: Path, target: str, tag: str = typer.Option(None), base: str = typer.Option(None)):
    """Upload a PEFT adapter folder as the next version of namespace/name."""
    namespace, name, _ = _split_ref(target)
    if not (directory / "adapter_config.json").is_file():
        _fail(f"{directory} has no adapter_config.json")
    total = sum((directory / n).stat().st_size for n in ("adapter_config.json", "adapter_model.safetensors", "README.md")
                if (directory / n).is_file())
    with _client() as client, _transfer_bar() as bar:
        task = bar.add_task(f"push {namespace}/{name}", total=total)
        try:
            version = client.push(directory, namespace, name, tag=tag, base=base,
                                  on_bytes=lambda n: bar.advance(task, n))
        except ClientError as exc:
            bar.stop()
            _fail(exc.detail)
    console.print(f"pushed [bold]{version['ref']}[/bold]")


@app.command()
def pull(source: str, directory: Path):
    """Download a version (namespace/name[@ref]) into a folder that PeftModel.from_pretrained can load."""
    namespace, name, ref = _split_ref(source)
    with _client() as client:
        try:
            version = client.version(namespace, name, ref)
        except ClientError as exc:
            _fail(exc.detail)
        with _transfer_bar() as bar:
            task = bar.add_task(f"pull {version['ref']}", total=sum(f["size"] for f in version["files"]))
            try:
                client.pull(namespace, name, str(version["number"]), directory, on_bytes=lambda n: bar.advance(task, n))
            except ClientError as exc:
                bar.stop()
                _fail(exc.detail)
    console.print(f"pulled [bold]{version['ref']}[/bold] into {directory}")


@app.command(name="ls")
def list_adapters(namespace: str = typer.Option(None), base: str = typer.Option(None),
                  q: str = typer.Option(None, "-q", help="Text to look for in names and descriptions.")):
    """List adapters."""
    with _client() as client:
        try:
            items = client.get("/api/v1/adapters", namespace=namespace, base=base, q=q)["items"]
        except ClientError as exc:
            _fail(exc.detail)
    table = Table("adapter", "base", "latest", "versions", "tags")
    for a in items:
        table.add_row(f"{a['namespace']}/{a['name']}", a["base"] or "", str(a["latest"] or "-"),
                      str(a["version_count"]), ", ".join(f"{t}→{n}" for t, n in sorted(a["tags"].items())))
    console.print(table)


@app.command()
def show(target: str):
    """Show an adapter's versions, or one version's files, metrics and lineage (namespace/name@ref)."""
    namespace, name, ref = _split_ref(target)
    with _client() as client:
        try:
            if "@" not in target:
                adapter = client.get(f"/api/v1/adapters/{namespace}/{name}")
                versions = client.get(f"/api/v1/adapters/{namespace}/{name}/versions")["items"]
                table = Table("version", "created", "tags", "yanked", "metrics")
                for v in versions:
                    table.add_row(str(v["number"]), v["created_at"][:19], ", ".join(v["tags"]),
                                  "yes" if v["yanked"] else "", json.dumps(v["metrics"])[:60])
                console.print(f"[bold]{namespace}/{name}[/bold] on {adapter['base']}")
                console.print(table)
                return
            version = client.version(namespace, name, ref)
            lineage = client.get(f"/api/v1/adapters/{namespace}/{name}/versions/{version['number']}/lineage")
        except ClientError as exc:
            _fail(exc.detail)
    console.print(f"[bold]{version['ref']}[/bold] on {version['base']}  tags: {', '.join(version['tags']) or '-'}"
                  f"{'  (yanked)' if version['yanked'] else ''}")
    for f in version["files"]:
        console.print(f"  {f['name']}  {f['size']} bytes  sha256 {f['sha256'][:16]}…")
    if version["metrics"]:
        console.print("metrics: " + json.dumps(version["metrics"], indent=2))
    for edge in lineage["parents"]:
        console.print(f"  {edge['relation']} {edge['version']}")


# ------------------------------------------------------------------ jobs

def _parse_params(pairs: list[str], schema: dict) -> dict:
    """--param k=v pairs, typed by the kind's JSON schema: numbers, booleans and JSON where the field wants them,
    comma-separated lists for array fields, plain text otherwise."""
    properties = schema.get("properties", {})
    params = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            _fail(f"--param {pair!r} is not key=value")
        if key not in properties:
            _fail(f"unknown parameter {key!r}; this kind takes: {', '.join(sorted(properties))}")
        field = properties[key]
        types = {t.get("type") for t in field.get("anyOf", [field])}
        if types & {"string"} and not types & {"array", "integer", "number", "boolean"}:
            params[key] = raw
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            value = [item.strip() for item in raw.split(",")] if "array" in types else raw
        if "array" in types and not isinstance(value, list):
            value = [value]
        params[key] = value
    return params


def _kind(client: HubClient, kind: str) -> dict:
    kinds = {k["name"]: k for k in client.get("/api/v1/job-kinds")["items"]}
    if kind not in kinds:
        _fail(f"unknown job kind {kind!r}; one of {', '.join(kinds)}")
    return kinds[kind]


def _submit(kind: str, inputs: list[str], params: dict, into: str | None, wait: bool) -> dict:
    output = None
    if into:
        namespace, name, _ = _split_ref(into)
        output = {"namespace": namespace, "name": name}
        inputs = [ref if "/" in ref else f"{namespace}/{ref}" for ref in inputs]
    with _client() as client:
        try:
            job = client.submit(kind, inputs, params, output)
            console.print(f"submitted {kind} job {job['id']}")
            if wait:
                job = _wait(client, job["id"])
                _report(job)
            return job
        except ClientError as exc:
            _fail(exc.detail)


def _wait(client: HubClient, job_id: str) -> dict:
    """Follow the job's events: a progress bar from its progress events, its log lines and metrics printed above."""
    after = 0
    with Progress("[progress.description]{task.description}", BarColumn(), "{task.percentage:>3.0f}%",
                  console=err) as bar:
        task = bar.add_task(job_id[:8], total=1.0)
        while True:
            for event in client.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                after = event["seq"]
                data = event["data"]
                if event["type"] == "progress":
                    bar.update(task, completed=data["progress"], description=f"{job_id[:8]} {data['stage'] or ''}")
                elif event["type"] == "log":
                    bar.console.print(f"  {data['message']}")
            job = client.job(job_id)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                bar.update(task, completed=job["progress"], description=f"{job_id[:8]} {job['state']}")
                return job
            time.sleep(0.5)


def _report(job: dict) -> None:
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(job["state"], "white")
    console.print(f"job {job['id']} [{colour}]{job['state']}[/{colour}] {' '.join(job['results'])}")
    if job.get("result"):
        console.print_json(json.dumps(job["result"]))
    if job["error"]:
        err.print(f"[red]{job['error']['type']}: {job['error']['message']}[/red]")
    if job["state"] != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("submit")
def jobs_submit(kind: str, inputs: list[str] = typer.Argument(None, help="Input versions ns/name[@ref]."),
                param: list[str] = typer.Option([], "--param", "-p", help="key=value, repeatable."),
                into: str = typer.Option(None, help="Output namespace/name, for kinds that publish a version."),
                wait: bool = typer.Option(False, help="Follow the job with a progress bar until it ends.")):
    """Submit a job of any kind (see `adaptarium jobs kinds`); params are typed by the kind's schema."""
    with _client() as client:
        try:
            schema = _kind(client, kind)["params_schema"]
        except ClientError as exc:
            _fail(exc.detail)
    _submit(kind, list(inputs or []), _parse_params(param, schema), into, wait)


@jobs_app.command("kinds")
def jobs_kinds():
    """The job kinds this hub runs, with their inputs, output and parameters."""
    with _client() as client:
        try:
            items = client.get("/api/v1/job-kinds")["items"]
        except ClientError as exc:
            _fail(exc.detail)
    table = Table("kind", "inputs", "output", "queue", "params")
    for k in items:
        low, high = k["inputs"]["min"], k["inputs"]["max"]
        table.add_row(k["name"], str(low) if low == high else f"{low}-{high}", k["output"], k["queue"],
                      ", ".join(k["params_schema"].get("properties", {})))
    console.print(table)


@app.command()
def train(task: str = typer.Option(None, help="builtin:<task>?n=256&seed=0"),
          dataset: str = typer.Option(None, help="A dataset version ns/name[@ref]."),
          base: str = typer.Option(..., help="The base model to train on."),
          into: str = typer.Option(..., help="Output adapter namespace/name."),
          steps: int = typer.Option(100), rank: int = typer.Option(8), lr: float = typer.Option(2e-4),
          param: list[str] = typer.Option([], "--param", "-p", help="Any other train parameter, key=value."),
          wait: bool = typer.Option(True)):
    """Fine-tune a LoRA on a built-in task or a registry dataset, as a job."""
    params = {"base": base, "steps": steps, "rank": rank, "lr": lr,
              **({"task": task} if task else {}), **({"dataset": dataset} if dataset else {})}
    with _client() as client:
        try:
            params.update(_parse_params(param, _kind(client, "train")["params_schema"]))
        except ClientError as exc:
            _fail(exc.detail)
    _submit("train", [], params, into, wait)


@app.command()
def evaluate(version: str, task: str = typer.Option(None, help="builtin:<task>?n=256&seed=0"),
             dataset: str = typer.Option(None, help="A dataset version ns/name[@ref]."),
             limit: int = typer.Option(None), wait: bool = typer.Option(True)):
    """Score a version (exact match) on a task's test split or a dataset; the scores go into its metrics."""
    params = {**({"task": task} if task else {}), **({"dataset": dataset} if dataset else {}),
              **({"limit": limit} if limit else {})}
    _submit("evaluate", [version], params, None, wait)


@app.command()
def merge(inputs: list[str] = typer.Argument(..., help="Two or more versions: ns/name[@ref] (or bare names in the "
                                                      "namespace of --into)."),
          into: str = typer.Option(..., help="Output adapter namespace/name."),
          method: str = typer.Option("lego"), rank: int = typer.Option(None), density: float = typer.Option(None),
          weights: str = typer.Option(None, help="Comma-separated, one per input."),
          wait: bool = typer.Option(True)):
    """Merge adapters with LoRA-LEGO or a standard method, as a job."""
    params = {"method": method}
    if rank is not None:
        params["rank"] = rank
    if density is not None:
        params["density"] = density
    if weights:
        params["weights"] = [float(w) for w in weights.split(",")]
    _submit("merge", inputs, params, into, wait)


def _with_params(kind: str, params: dict, extra: list[str]) -> dict:
    """The command's own options plus any other parameter of the kind given as --param key=value."""
    if extra:
        with _client() as client:
            try:
                params.update(_parse_params(extra, _kind(client, kind)["params_schema"]))
            except ClientError as exc:
                _fail(exc.detail)
    return {k: v for k, v in params.items() if v is not None}


PARAM = typer.Option([], "--param", "-p", help="Any other parameter of the kind, key=value (repeatable).")


@app.command(name="transfer-kit")
def transfer_kit(version: str, task: str = typer.Option(None, help="builtin:<task>?n=...: the real data"),
                 dataset: str = typer.Option(None, help="A dataset version with the real data."),
                 into: str = typer.Option(..., help="Kit name namespace/name (adapter + seed dataset)."),
                 seeds: int = typer.Option(5), param: list[str] = PARAM, wait: bool = typer.Option(True)):
    """Make a Trans-LoRA kit for an adapter version while its data exists (discriminator + seeds)."""
    _submit("transfer_kit", [version], _with_params("transfer_kit", {"task": task, "dataset": dataset,
                                                                     "seeds": seeds}, param), into, wait)


@app.command()
def transfer(version: str, to: str = typer.Option(..., "--to", help="The target base."),
             into: str = typer.Option(..., help="Output adapter namespace/name."),
             kit: str = typer.Option(None, help="Kit version (default: found through the source's lineage)."),
             evaluate: str = typer.Option(None, help="builtin:<task> or a dataset to score the result on."),
             param: list[str] = PARAM, wait: bool = typer.Option(True)):
    """Move an adapter to another base with Trans-LoRA (synthetic data filtered by its kit, distilled)."""
    _submit("transfer", [version], _with_params("transfer", {"target_base": to, "kit": kit, "evaluate": evaluate},
                                                param), into, wait)


@app.command()
def unlearn(version: str, forget: str = typer.Option(..., help="Dataset version or builtin:<task> to forget."),
            into: str = typer.Option(None, help="Output namespace/name (default: the input's, as its next version)."),
            relabel: str = typer.Option("refusal", help="refusal or wrong_option"),
            param: list[str] = PARAM, wait: bool = typer.Option(True)):
    """O3 unlearning: the next version forgets a set (orthogonal LoRA + OOD-gated soft load)."""
    namespace, name, _ = _split_ref(version)
    _submit("unlearn", [version], _with_params("unlearn", {"forget": forget, "relabel": relabel}, param),
            into or f"{namespace}/{name}", wait)


@app.command()
def infer(target: str = typer.Argument(..., help="A version ns/name[@ref], or a base name with --base."),
          prompts: list[str] = typer.Argument(..., help="One or more prompts."),
          base: bool = typer.Option(False, "--base", help="TARGET is a base model: no adapter."),
          max_new_tokens: int = typer.Option(64), temperature: float = typer.Option(0.0),
          gate: str = typer.Option("auto", help="auto (O3 gate) or off (plain PEFT files)")):
    """Completions from a version (gated for O3 versions) or a base; prints each with its gate weight."""
    params = {"prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": temperature, "gate": gate}
    inputs = [] if base else [target]
    if base:
        params["base"] = target
    with _client() as client:
        try:
            job = client.post("/api/v1/jobs?wait=60", {"kind": "infer", "inputs": inputs, "params": params})
            if job["state"] not in ("succeeded", "failed", "cancelled"):
                job = _wait(client, job["id"])
        except ClientError as exc:
            _fail(exc.detail)
    if job["state"] != "succeeded":
        _report(job)
    result = job["result"]
    for i, (prompt, completion) in enumerate(zip(result["prompts"], result["completions"])):
        gate_note = f"  [gate {result['gate_weights'][i]:.3f}]" if "gate_weights" in result else ""
        console.print(f"[bold]{escape(prompt)}[/bold]{escape(completion)}{escape(gate_note)}", highlight=False)


@app.command(name="train-generator")
def train_generator_cmd(inputs: list[str] = typer.Argument(..., help="The family's adapter versions (trained with "
                                                                     "checkpoint_every)."),
                        into: str = typer.Option(..., help="Generator namespace/name."),
                        condition: str = typer.Option("hidden_state", help="hidden_state or text"),
                        description: list[str] = typer.Option([], help="One per input, for --condition text."),
                        param: list[str] = PARAM, wait: bool = typer.Option(True)):
    """ICM-LoRA: train a generator (CVAE) on a family of adapters' training trajectories."""
    params = {"condition": condition, "descriptions": list(description) or None}
    _submit("train_generator", inputs, _with_params("train_generator", params, param), into, wait)


@app.command(name="generate")
def generate_cmd(generator: str, into: str = typer.Option(..., help="Output adapter namespace/name."),
                 examples: str = typer.Option(None, help="Dataset version or builtin:<task> of the new task."),
                 description: str = typer.Option(None, help="The new task in words (text generators)."),
                 samples: int = typer.Option(1), select: str = typer.Option("none", help="none or likelihood"),
                 param: list[str] = PARAM, wait: bool = typer.Option(True)):
    """ICM-LoRA: generate an adapter for a new task from a generator version."""
    params = {"examples": examples, "description": description, "samples": samples, "select": select}
    _submit("generate", [generator], _with_params("generate", params, param), into, wait)


@jobs_app.command("ls")
def jobs_ls(state: str = typer.Option(None), kind: str = typer.Option(None)):
    """Jobs you can see, newest first."""
    with _client() as client:
        try:
            items = client.get("/api/v1/jobs", state=state, kind=kind)["items"]
        except ClientError as exc:
            _fail(exc.detail)
    table = Table("id", "kind", "state", "progress", "results")
    for j in items:
        table.add_row(j["id"][:12], j["kind"], j["state"], f"{j['progress']:.0%}", " ".join(j["results"]))
    console.print(table)


@app.command(name="workers")
def workers_ls():
    """The worker fleet: each worker's device, queues, status (online / stale / stopped) and current job."""
    with _client() as client:
        try:
            items = client.get("/api/v1/workers")["items"]
        except ClientError as exc:
            _fail(exc.detail)
    table = Table("name", "status", "device", "queues", "current job", "done", "failed", "heartbeat")
    for w in items:
        named = w.get("device_name") not in (None, "cpu")
        device = f"{w['device']} ({w['device_name']})" if named else w["device"]
        job = w.get("current_job")
        current = "" if not job else "busy (hidden)" if job["hidden"] else f"{job['id'][:12]} {job['kind']}"
        table.add_row(w["name"], w["status"], device, ",".join(w["queues"]), current, str(w["jobs_done"]),
                      str(w["jobs_failed"]), f"{w['heartbeat_age_s']:.0f} s ago")
    console.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str):
    """A job as JSON."""
    with _client() as client:
        try:
            console.print_json(json.dumps(client.job(job_id)))
        except ClientError as exc:
            _fail(exc.detail)


@jobs_app.command("wait")
def jobs_wait(job_id: str):
    """Follow a job until it ends; exits non-zero unless it succeeded."""
    with _client() as client:
        try:
            _report(_wait(client, job_id))
        except ClientError as exc:
            _fail(exc.detail)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str):
    """Cancel a queued job at once, or a running one at its next step."""
    with _client() as client:
        try:
            job = client.post(f"/api/v1/jobs/{job_id}/cancel", {})
        except ClientError as exc:
            _fail(exc.detail)
    console.print(f"job {job['id']} {job['state']}{' (stopping)' if job['state'] == 'running' else ''}")


@jobs_app.command("retry")
def jobs_retry(job_id: str, wait: bool = typer.Option(False)):
    """Run a failed or cancelled job again."""
    with _client() as client:
        try:
            job = client.post(f"/api/v1/jobs/{job_id}/retry", {})
            console.print(f"job {job['id']} {job['state']}")
            if wait:
                _report(_wait(client, job_id))
        except ClientError as exc:
            _fail(exc.detail)


@jobs_app.command("logs")
def jobs_logs(job_id: str, follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until it ends.")):
    """A job's event log: state changes, log lines, metrics, errors."""
    after = 0
    with _client() as client:
        try:
            while True:
                for event in client.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                    after = event["seq"]
                    console.print(_event_line(event), highlight=False)
                if not follow or client.job(job_id)["state"] in ("succeeded", "failed", "cancelled"):
                    if follow:  # anything written between the last read and the end
                        for event in client.get(f"/api/v1/jobs/{job_id}/events", after=after)["items"]:
                            console.print(_event_line(event), highlight=False)
                    return
                time.sleep(0.5)
        except ClientError as exc:
            _fail(exc.detail)


def _event_line(event: dict) -> str:
    data = event["data"]
    text = {"log": lambda: data["message"],
            "metric": lambda: f"{data['name']} = {data['value']:.6g}" + (f" (step {data['step']})" if data.get("step") is not None else ""),
            "progress": lambda: f"{data['progress']:.0%} {data.get('stage') or ''}",
            "state": lambda: data["state"] + (f" {' '.join(data['results'])}" if data.get("results") else ""),
            "error": lambda: f"{data.get('type')}: {data.get('message')}\n{data.get('traceback', '')}"}
    return f"{event['at'][11:19] if event['at'] else ''} {event['type']:<8} {text.get(event['type'], lambda: json.dumps(data))()}"


from hub.cli_gc import gc as gc_command  # noqa: E402 - the command lives beside the collector it drives

app.command(name="gc")(gc_command)


def main() -> None:
    """The console script: the CLI, with an unreachable hub said in one line instead of a traceback."""
    import httpx

    try:
        app()
    except httpx.TransportError as exc:
        url = os.environ.get("ADAPTARIUM_URL") or "http://127.0.0.1:8000"
        err.print(f"[red]error:[/red] cannot reach the hub at {url} ({type(exc).__name__}: {exc}); "
                  "is it running? (ADAPTARIUM_URL)")
        sys.exit(1)


if __name__ == "__main__":
    main()
