"""The FastAPI application: wiring of settings, database, blob store, routers, metrics and the dashboard.

`create_app` is a uvicorn factory (`uvicorn hub.api.app:create_app --factory`), so every worker process builds its own
engine and store from the environment. Nothing here imports torch: the API must start fast and stay small.
"""
from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

from hub.api import adapters, bases, edge, hf, jobs, namespaces, workers
from hub.api.metrics import HubMetrics, MetricsMiddleware
from hub.dashboard import mount_dashboard
from hub.db import make_engine, make_session_factory
from hub.registry import RegistryError
from hub.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(title="Adaptarium", version="1", summary="Registry and job service for LoRA adapters")
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.store = settings.open_store()
    app.state.metrics = HubMetrics()

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(PoolTimeout)
    async def database_busy(_request: Request, exc: Exception) -> JSONResponse:
        # every pooled connection stayed in use for the pool's whole wait: overload, not a fault; come back soon
        return overloaded("the database is busy; retry shortly")

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return overloaded("the database is unavailable or busy; retry shortly", retry_after_s=2)
        return await _internal_error(request, exc)

    app.state.body_read_timeout_s = settings.body_read_timeout_s

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def metrics():
        return app.state.metrics.response()

    # Routes are matched in order, one by one, and the adapter routers hold ~50 of them: the job routes come first,
    # since a submit is latency-bound (matching its path cost ~0.3 ms after an idle gap behind them,
    # ~0.1 ms in front). The /api/v1 prefixes are disjoint, so the order changes no match.
    for module in (jobs, namespaces, bases, adapters, workers):
        app.include_router(module.router)
    app.include_router(jobs.kinds_router)
    app.include_router(hf.router)  # Hub-compatible paths live at the root, as huggingface_hub builds them
    mount_dashboard(app)
    app.add_exception_handler(StarletteHTTPException, edge.http_error)  # 405s name every method of their path
    app.add_middleware(edge.UnsafeInputMiddleware)  # NUL and over-deep JSON: 422 before any route (a 500 on PostgreSQL)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyReadTimeoutMiddleware)
    app.add_middleware(ErrorsKeepConnectionMiddleware)  # outermost of ours: catches what everything inside raises
    return app


# ------------------------------------------------------------------ error handling and body timeouts

logger = logging.getLogger("adaptarium.api")


def database_unavailable(exc: DBAPIError) -> bool:
    """A database error that is no fault of the request and passes: the server down, restarting or shutting down, a
    connection it closed (the pool has already dropped it and reconnects on the next checkout), its connection cap,
    SQLite's lock wait run out. Such a request is a 503 with Retry-After (a PostgreSQL restart used to give
    500s); any other database error stays a 500, a fault to fix."""
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:  # the server answered: connection exceptions (08), shutting down (57P), too many (53)
        return sqlstate.startswith(("08", "57P", "53"))
    message = str(exc.orig)
    if "sqlite" in type(exc.orig).__module__:
        return "locked" in message or "busy" in message
    return True  # a client-side connection failure (refused, reset, closed): no state from the server at all


def overloaded(detail: str, retry_after_s: int = 1) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(retry_after_s)})


async def _internal_error(_request: Request | None, exc: BaseException) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


class ErrorsKeepConnectionMiddleware:
    """Turn an unhandled exception into a JSON 500 here, and do not re-raise it.

    Starlette's own last-resort handler sends its 500 and then re-raises, and uvicorn answers an exception that
    arrives after a response started by closing the connection: every keep-alive client then lost its connection
    along with the one failed request. A 500 is an answer like any other; the connection stays usable. An error
    after the response has started (a download broken halfway) still closes it, as it must."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = await _internal_error(None, exc)
            await response(scope, receive, send)


class BodyReadTimeout(HTTPException):
    def __init__(self, timeout_s: float):
        super().__init__(408, f"no request body bytes arrived for {timeout_s:g} s", headers={"Connection": "close"})


class BodyReadTimeoutMiddleware:
    """A request body must keep coming: waiting longer than `app.state.body_read_timeout_s` for the next piece of it
    is a 408 and the connection is closed.

    Without it, a client declaring a 2 GB body and sending nothing holds its request (and whatever the route took,
    a token check, an upload slot) for as long as the TCP connection lives. The clock only runs while the route
    waits for the client, never while the route itself works, and stops once the body is complete (after that a
    `receive` is a wait for the client to disconnect, which may legitimately be long). BodyReadTimeout is an
    HTTPException so that FastAPI's body parsing and the upload stream pass it on instead of calling it a bad body."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        timeout_s = scope["app"].state.body_read_timeout_s
        body_done = False

        async def timed_receive():
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout_s)
            except asyncio.TimeoutError:
                raise BodyReadTimeout(timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)
