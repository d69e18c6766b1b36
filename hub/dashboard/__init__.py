"""The web dashboard: a static single page served by the hub itself.

Why static files and no build step: the hub must work offline and start fast, so the page is plain HTML, CSS and
vanilla JS that read the same REST API as the CLI. Nothing is fetched from a CDN; every asset comes from this folder.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def mount_dashboard(app: FastAPI) -> None:
    """Serve the page at `/` and its assets under `/dashboard/`; views live in the URL hash (#/jobs, #/adapters...)."""

    @app.get("/", include_in_schema=False)
    def dashboard_index() -> FileResponse:
        # no-cache so a redeployed hub never serves a page that disagrees with its own app.js
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard")
