"""What every `adaptarium` command module shares: the consoles, one-line failures, the data-dir option and its
database check, reference parsing, and the `--json` switch.

Kept apart from hub.cli so the registry and job command modules can import it without importing each other.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from hub.client import ClientError, HubClient
from hub.settings import DEFAULT_DATA_DIR

console = Console()
err = Console(stderr=True)
SHORT_ID = 8  # how many characters of a job id the CLI shows; any unique prefix is accepted back

DATA_DIR = typer.Option(Path(DEFAULT_DATA_DIR), envvar="ADAPTARIUM_DATA_DIR",
                        help="Where the database, blobs and broker live (the same default for `up`, `token`, `gc`).")
JSON = typer.Option(False, "--json", help="Print the API's JSON instead of a table.")
OBJECTS = ("adapter", "dataset", "generator")


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def client() -> HubClient:
    return HubClient()


def get_or_fail(path: str, **params):
    """One read of the hub for a read command: its JSON, or the hub's refusal printed as the command's error."""
    with client() as c:
        try:
            return c.get(path, **params)
        except ClientError as exc:
            fail(exc.detail)


def print_json(value) -> None:
    """Plain JSON on stdout (no colours, no wrapping), so it pipes into jq."""
    print(json.dumps(value, indent=2))


def split_ref(text: str) -> tuple[str, str, str]:
    path, _, ref = text.partition("@")
    namespace, slash, name = path.partition("/")
    if not slash or not namespace or not name:
        fail(f"{text!r} is not namespace/name[@version]")
    return namespace, name, ref or "latest"


def settings_for(data_dir: Path):
    """Settings for this data dir: its database unless ADAPTARIUM_DATABASE_URL names another."""
    from hub.settings import Settings

    return Settings.from_env({**os.environ, "ADAPTARIUM_DATA_DIR": str(data_dir.resolve())})


def existing_database(settings) -> str:
    """The settings' database URL, once it is known to hold a hub; otherwise one line naming --data-dir and exit 1.

    Opening a SQLite URL creates the file, so a command pointed at the wrong directory would leave an empty
    database behind and then fail deep inside a query: the file is looked for first, and the schema after."""
    import sqlalchemy

    url = settings.database_url
    where = f"in {settings.data_dir}" if url.startswith("sqlite:///") else f"at {_hide_password(url)}"
    hint = ("start one with `adaptarium up`, or point to it with --data-dir (ADAPTARIUM_DATA_DIR) or "
            "ADAPTARIUM_DATABASE_URL")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        fail(f"no hub database {where}; {hint}")
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            found = sqlalchemy.inspect(conn).has_table("api_tokens")
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"cannot open the hub database {where}: {reason}")
    finally:
        engine.dispose()
    if not found:
        fail(f"no hub database {where} (no adaptarium tables); {hint}")
    return url


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
