"""Request-scoped dependencies: the DB session, the blob store, and the caller's token with scope checks.

Authorization is a plain function (`require`) called by each route with the namespace it touches, rather than a
dependency per scope, because the namespace comes from the path or from the body and the rule is one line either way.
"""
from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from hub import auth
from hub.models import ApiToken, Namespace
from hub.settings import Settings
from hub.storage import BlobStore


def settings(request: Request) -> Settings:
    return request.app.state.settings


def store(request: Request) -> BlobStore:
    return request.app.state.store


def db(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def token(request: Request, session: Session = Depends(db)) -> ApiToken | None:
    """The caller's token, or None when no Authorization header was sent; a bad token is 401, not anonymous.

    Verified tokens are cached for a moment (`auth.TokenCache`): most requests read no token row."""
    plaintext = _bearer(request)
    return None if plaintext is None else _verified(_token_cache(request.app).authenticate(session, plaintext))


async def token_without_session(request: Request) -> ApiToken | None:
    """`token` for a route that opens its own session: a cached token is answered on the event loop, and only a token
    not in the cache costs a trip to a pool thread (with a short session of its own) to be read. Each trip is a thread
    wake-up; the job submit, which is latency-bound, takes none for its token this way."""
    plaintext = _bearer(request)
    if plaintext is None:
        return None
    cache = _token_cache(request.app)
    hit = cache.cached(plaintext)
    if hit is not None:
        return hit

    def read() -> ApiToken | None:
        with request.app.state.session_factory() as session:
            return cache.authenticate(session, plaintext)

    return _verified(await run_in_threadpool(read))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise HTTPException(401, "Authorization header must be 'Bearer <token>'")
    return value.strip()


def _verified(found: ApiToken | None) -> ApiToken:
    if found is None:
        raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return found


def _token_cache(app) -> auth.TokenCache:
    cache = getattr(app.state, "token_cache", None)
    if cache is None:  # made on first use (no lock: two racing requests would each make one; one wins, no harm)
        cache = app.state.token_cache = auth.TokenCache(app.state.settings.token_cache_seconds)
    return cache


def require(tok: ApiToken | None, namespace: Namespace | str | None, scope: str) -> None:
    """Raise 401 (no token) or 403 (token lacks `scope` on `namespace`); `None` namespace means hub-wide (admin ops)."""
    if auth.allows(tok, namespace, scope):
        return
    if tok is None:
        raise HTTPException(401, f"this needs a token with {scope} scope", headers={"WWW-Authenticate": "Bearer"})
    where = f"namespace {namespace.name if isinstance(namespace, Namespace) else namespace!r}" if namespace else "the hub"
    raise HTTPException(403, f"token lacks {scope} scope on {where}")


def can_read(tok: ApiToken | None, namespace: Namespace) -> bool:
    return auth.allows(tok, namespace, "read")


def require_any(tok: ApiToken | None, scope: str) -> None:
    """A token with `scope` somewhere (jobs that only compute, like evaluating a base alone, touch no namespace)."""
    if tok is None:
        raise HTTPException(401, f"this needs a token with {scope} scope", headers={"WWW-Authenticate": "Bearer"})
    if max((auth.LEVELS.get(s, 0) for s in tok.scope_set), default=0) < auth.LEVELS[scope]:
        raise HTTPException(403, f"token lacks {scope} scope")
