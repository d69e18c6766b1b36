"""The FastAPI application: wiring of settings, database, blob store, routers, metrics and the dashboard.

`create_app` is a uvicorn factory (`uvicorn hub.api.app:create_app --factory`), so every worker process builds its own
engine and store from the environment. Nothing here imports torch: the API must start fast and stay small.
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hub.api import adapters, bases, hf, jobs, namespaces
from hub.api.metrics import HubMetrics, MetricsMiddleware
from hub.dashboard import mount_dashboard
from hub.db import make_engine, make_session_factory
from hub.registry import RegistryError
from hub.settings import Settings
from hub.storage import open_store


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(title="Adaptarium", version="1", summary="Registry and job service for LoRA adapters")
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.store = open_store(settings.storage_url, staging_dir=settings.data_dir / "staging")
    app.state.metrics = HubMetrics()

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics():
        return app.state.metrics.response()

    for module in (namespaces, bases, adapters, jobs):
        app.include_router(module.router)
    app.include_router(hf.router)  # Hub-compatible paths live at the root, as huggingface_hub builds them
    mount_dashboard(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app
