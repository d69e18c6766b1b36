"""`adaptarium gc`: remove blobs no version names, older than a grace period, and stale upload staging files.

A serving command like `token create`: it works on the database and the blob store of a data dir directly (the API
need not run), with the same collection as the admin endpoint `POST /api/v1/admin/gc` (see hub.gc for why it is
safe while uploads of the same content run).
"""
from __future__ import annotations

import json
from pathlib import Path

import typer

from hub.cli_common import DATA_DIR, existing_database, settings_for


def gc(data_dir: Path = DATA_DIR,
       grace_hours: float = typer.Option(24.0, min=0, help="Keep blobs claimed or written this recently."),
       dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be removed; remove nothing."),
       as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
    """Remove unreferenced blobs older than the grace period (and stale staging files)."""
    from hub import gc as collector
    from hub.db import make_engine, make_session_factory

    settings = settings_for(data_dir)
    engine = make_engine(existing_database(settings))
    try:
        store = settings.open_store()
        report = collector.collect_garbage(make_session_factory(engine), store, grace_s=grace_hours * 3600,
                                           dry_run=dry_run)
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{report.blobs_seen} blobs: {report.referenced} referenced, {report.recent} within the grace period; "
               f"{verb} {len(report.removed)} ({report.bytes_removed} bytes), {report.staging_removed} staging files, "
               f"{report.rows_removed} orphan rows in {report.seconds:.2f} s")
