"""Prometheus metrics for the API: requests, latencies, bytes in and out, versions created.

A pure ASGI middleware rather than an `@app.middleware("http")` function, because the HTTP-middleware form buffers
nothing but cannot see the bytes of a streamed body; wrapping `receive` and `send` counts exactly what crossed the
socket, downloads and uploads included, without touching the handlers.

Under several uvicorn worker processes (docker-compose runs four) each process counts only its own requests, and a
scrape lands on one of them at random. With PROMETHEUS_MULTIPROC_DIR set (an empty directory shared by the workers),
prometheus_client keeps the values in files there and /metrics sums every process's files.
"""
from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from starlette.responses import Response


class HubMetrics:
    """One registry per app, so two apps in one test process do not share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("adaptarium_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("adaptarium_http_request_seconds", "Request latency (until the last body byte)",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.bytes_in = Counter("adaptarium_http_bytes_in", "Request body bytes received", registry=self.registry)
        self.bytes_out = Counter("adaptarium_http_bytes_out", "Response body bytes sent", registry=self.registry)
        self.versions_created = Counter("adaptarium_versions_created", "Versions created through the API", ["kind"],
                                        registry=self.registry)

    def response(self) -> Response:
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app, metrics: HubMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                self.metrics.bytes_in.inc(len(message.get("body", b"")))
            return message

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                self.metrics.bytes_out.inc(len(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], label, str(status["code"])).inc()
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - started)
