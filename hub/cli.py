"""`adaptarium`: run the hub (`up`, `worker`, `db upgrade`, `token create|revoke`, `gc`) and use it (registry commands
in hub.cli_registry, job commands in hub.cli_jobs).

Serving commands work on the database directly, found through --data-dir / ADAPTARIUM_DATA_DIR (one default,
hub.settings.DEFAULT_DATA_DIR); every other command is a client of the REST API (ADAPTARIUM_URL, ADAPTARIUM_TOKEN),
so the CLI sees exactly what the dashboard and other clients see. Only `bases add` imports torch, inside the
command, to compute a base's module shapes.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from hub import cli_jobs, cli_registry
from hub.cli_common import DATA_DIR, console, err, existing_database, fail, settings_for

app = typer.Typer(help="Adaptarium: a registry and job service for LoRA adapters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (on the hub's machine: talks to the database).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(cli_registry.bases_app, name="bases")
app.add_typer(cli_registry.datasets_app, name="datasets")
app.add_typer(cli_registry.generators_app, name="generators")
app.add_typer(cli_jobs.jobs_app, name="jobs")
for _name, _fn in [("push", cli_registry.push), ("pull", cli_registry.pull), ("ls", cli_registry.ls),
                   ("show", cli_registry.show), ("tag", cli_registry.tag), ("yank", cli_registry.yank),
                   *cli_jobs.COMMANDS]:
    app.command(name=_name)(_fn)


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


@app.command()
def up(data_dir: Path = DATA_DIR,
       port: int = typer.Option(8000), host: str = typer.Option("127.0.0.1"),
       worker: bool = typer.Option(True, help="Also start one worker process on the gpu and cpu queues."),
       verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the access log, the worker's log and "
                                    "library warnings here instead of in DATA_DIR/adaptarium.log.")):
    """Run the hub on one machine: API + one worker, SQLite + local blobs + embedded broker unless configured."""
    import uvicorn

    from hub import serve_logs
    from hub.migrate import upgrade
    from hub.settings import Settings

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ADAPTARIUM_DATA_DIR"] = str(data_dir)
    settings = Settings.from_env()
    log_path = data_dir / "adaptarium.log"
    if not verbose:
        serve_logs.quiet_warnings(log_path)
    upgrade(settings.database_url)
    _ensure_admin_token(settings)
    console.print(f"Adaptarium hub on [bold]http://{host}:{port}[/bold]  (data in {data_dir})", highlight=False,
                  soft_wrap=True)
    console.print(f"admin token in {data_dir / 'admin-token'}", highlight=False, soft_wrap=True)
    if not verbose:
        console.print(f"log: {log_path}  (--verbose shows it here)", highlight=False, soft_wrap=True)
    child = None
    if worker:
        child = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--queues", "gpu,cpu"],
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_die_with_parent,
                                 **({} if verbose else {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}))
        if not verbose:
            serve_logs.relay_worker(child, log_path, console)
    try:
        uvicorn.run("hub.api.app:create_app", factory=True, host=host, port=port, log_level="info",
                    **({} if verbose else {"log_config": serve_logs.uvicorn_config(log_path)}))
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
        fail(str(exc))


@db_app.command("upgrade")
def db_upgrade():
    """Bring the database (ADAPTARIUM_DATABASE_URL) to the newest schema."""
    from hub.migrate import upgrade
    from hub.settings import Settings

    upgrade(Settings.from_env().database_url)
    console.print("database is up to date")


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

    engine = make_engine(existing_database(settings_for(data_dir)))
    try:
        with make_session_factory(engine)() as session:
            try:
                token = auth.create_token(session, namespace, {scope})
            except RegistryError as exc:
                fail(exc.detail)
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

    engine = make_engine(existing_database(settings_for(data_dir)))
    try:
        with make_session_factory(engine)() as session:
            if not auth.revoke(session, token.strip()):
                fail("no such token")
            session.commit()
    finally:
        engine.dispose()
    console.print(f"revoked {token.strip()[:8]}…")


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
                  "is it running? (ADAPTARIUM_URL)", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
