"""The dashboard is self-contained: the hub serves the page and every asset it names, and nothing points off-site."""
from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.dashboard import STATIC_DIR, mount_dashboard


def dashboard_client() -> TestClient:
    app = FastAPI()
    mount_dashboard(app)
    return TestClient(app)


def test_root_serves_the_page_and_every_asset_it_references():
    client = dashboard_client()
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text)
    assert sorted(assets) == ["/dashboard/app.css", "/dashboard/app.js", "/dashboard/card.js", "/dashboard/jobs.js",
                              "/dashboard/lineage.js"]
    for path in assets:
        res = client.get(path)
        assert res.status_code == 200, path
        assert res.content == (STATIC_DIR / path.removeprefix("/dashboard/")).read_bytes()


def test_assets_load_nothing_from_other_hosts():
    # an offline hub must render fully: no CDN scripts, fonts or stylesheets
    for name in ("index.html", "app.css", *(p.name for p in STATIC_DIR.glob("*.js"))):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"https?://", text), name
        assert "@import" not in text, name


def test_unknown_asset_is_404_and_paths_cannot_escape_the_static_folder():
    client = dashboard_client()
    assert client.get("/dashboard/nope.js").status_code == 404
    assert client.get("/dashboard/..%2f__init__.py").status_code == 404
