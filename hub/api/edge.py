"""Checks every request passes before any route sees it, and the one answer Starlette gets wrong for us (405).

`UnsafeInputMiddleware` refuses a NUL character anywhere a client can put one in a request (the path, the query
string, a JSON body) and a JSON body nested deeper than hub.json_safety.MAX_DEPTH, with a 422, on both databases
alike (on PostgreSQL a NUL reaching a statement was a 500, for anonymous callers too).
Multipart uploads are checked where their parts are read (hub.api.uploads for text fields; the adapter config, the
generator config and dataset lines where they are validated): a file's bytes are not text, and a README may quote
"\\u0000" as prose.
"""
from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.json_safety import UnsafeJson, check_value, may_be_unsafe

NUL_IN_REQUEST = "the request holds a NUL character (%00), which no name, reference or value may contain"


class UnsafeInputMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            return await _refuse(scope, receive, send, NUL_IN_REQUEST)
        content_type = _header(scope, b"content-type")
        if content_type.startswith(b"multipart/"):
            return await self.app(scope, receive, send)
        await self.app(scope, _checked_body(receive), send)


def _header(scope, name: bytes) -> bytes:
    return next((value.lower() for key, value in scope["headers"] if key.lower() == name), b"")


def _checked_body(receive):
    """`receive` for a body that may be JSON: the body passes through unchanged, but its last piece is handed over
    only once the whole body passed check_value (parsed only when json_safety.may_be_unsafe says it could fail).
    A refusal is an HTTPException, which FastAPI's body parsing passes on as the answer."""
    pieces: list[bytes] = []
    done = False

    async def checked():
        nonlocal done
        message = await receive()
        if done or message["type"] != "http.request":
            return message
        pieces.append(message.get("body", b""))
        if not message.get("more_body", False):
            done = True
            body = b"".join(pieces)
            pieces.clear()
            if may_be_unsafe(body):
                _check_json(body)
        return message

    return checked


def _check_json(body: bytes) -> None:
    try:
        value = json.loads(body)
    except RecursionError:
        raise HTTPException(422, "the JSON body is nested too deeply") from None
    except ValueError:
        return  # not JSON: the route's own parsing says so
    try:
        check_value(value, "the JSON body")
    except UnsafeJson as exc:
        raise HTTPException(422, str(exc)) from None


def _methods_on(routes, path: str) -> set[str]:
    """The methods of every route whose path matches `path`, looking into included routers (FastAPI keeps those as
    branches whose `effective_candidates()` are the routes with their prefixes applied)."""
    methods: set[str] = set()
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            methods |= _methods_on(candidates(), path)
            continue
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return methods


async def _refuse(scope, receive, send, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)


async def http_error(request: Request, exc: StarletteHTTPException):
    """FastAPI's own answer to an HTTPException, except that a 405's Allow lists the methods of every route on the path.

    Starlette answers 405 with the methods of the first route whose path matched, and a path like
    `.../versions` is two routes (GET lists, POST uploads): its Allow said POST alone, and a client (or
    Schemathesis) believed GET was not there."""
    if exc.status_code == 405:
        methods = _methods_on(request.app.router.routes, request.scope["path"])
        if methods:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(methods))}
    return await http_exception_handler(request, exc)
