"""API tokens: created once and shown once, stored as sha256, scoped (read < write < admin) to one namespace or all.

A token with no namespace covers every namespace; hub-wide operations (registering bases, creating namespaces) need
such a token with admin scope. sha256 without a salt is enough here because tokens are 240 random bits, not passwords.
"""
from __future__ import annotations

import hashlib
import secrets
import time
import weakref
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ApiToken, Namespace, utcnow
from hub.registry import Invalid, ensure_namespace

LEVELS = {"read": 1, "write": 2, "admin": 3}
PREFIX_CHARS = 16  # "ada_" and 12 of the token's random characters


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_token(session: Session, namespace: str | None, scopes: set[str]) -> str:
    """Make a token and return its plaintext (the only time it exists); the caller commits."""
    unknown = set(scopes) - set(LEVELS)
    if not scopes or unknown:
        raise Invalid(f"scopes must be some of {', '.join(LEVELS)}; got {sorted(scopes)}")
    ns_id = ensure_namespace(session, namespace).id if namespace else None
    plaintext = "ada_" + secrets.token_urlsafe(30)
    # The prefix names the token in answers (a job's or a version's created_by) and tells a job's creator apart for
    # jobs only their creator may see: 12 random characters (72 bits), so no two tokens share one in practice
    # (tokens made before this have 4, 24 bits; the column holds 16).
    session.add(ApiToken(token_hash=hash_token(plaintext), prefix=plaintext[:PREFIX_CHARS], namespace_id=ns_id,
                         scopes=",".join(sorted(scopes))))
    session.flush()
    return plaintext


def authenticate(session: Session, plaintext: str) -> ApiToken | None:
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext))).first()
    if token is None or token.revoked:
        return None
    now = utcnow()
    last = token.last_used_at
    if last is None or (now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo))) > timedelta(minutes=5):
        token.last_used_at = now  # coarse, so reads do not turn into a write per request
        session.commit()
    return token


def revoke(session: Session, plaintext: str) -> bool:
    """Mark a token revoked (the caller commits). Caches in this process forget it at once; API processes elsewhere
    stop accepting it within their `token_cache_seconds`."""
    digest = hash_token(plaintext)
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if token is None:
        return False
    token.revoked = True
    session.flush()
    for cache in list(_CACHES):
        cache.forget(digest)
    return True


class TokenCache:
    """Tokens this API process verified recently, by sha256, each trusted for `ttl_s` seconds.

    Reading the token was a query of its own on every request (~1.4 ms of a ~10 ms metadata read); with
    the cache a client's requests pay it once per `ttl_s`. The price is how late a revocation made in another process
    (the `adaptarium token revoke` CLI writes the database directly) is noticed: within `ttl_s` (Settings
    `token_cache_seconds`, 2 s by default; 0 turns the cache off). Revocations through `revoke` in this process clear
    the entry at once. Only valid tokens are kept, so a new token works immediately and an unknown one is always
    looked up. The cached rows are detached from any session and only read (scopes, namespace, prefix)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[ApiToken, float]] = {}
        _CACHES.add(self)

    def cached(self, plaintext: str) -> ApiToken | None:
        """The token if it was verified within `ttl_s`, else None (which means "look it up", not "invalid")."""
        return self._fresh(hash_token(plaintext))

    def _fresh(self, digest: str) -> ApiToken | None:
        hit = self._entries.get(digest)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def authenticate(self, session: Session, plaintext: str) -> ApiToken | None:
        digest = hash_token(plaintext)
        hit = self._fresh(digest)
        if hit is not None:
            return hit
        token = authenticate(session, plaintext)
        if token is None:
            self._entries.pop(digest, None)
        elif self.ttl_s > 0:
            session.expunge(token)
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a flood of distinct valid tokens: start over rather than grow
            self._entries[digest] = (token, time.monotonic() + self.ttl_s)
        return token

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)


_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()


def allows(token: ApiToken | None, namespace: Namespace | str | None, scope: str) -> bool:
    """Does `token` grant `scope` on `namespace`? None namespace means hub-wide; higher scopes imply lower ones.

    Reading a public namespace needs no token at all (pass the Namespace row so its `private` flag is known)."""
    if scope == "read" and isinstance(namespace, Namespace) and not namespace.private:
        return True
    if token is None or token.revoked:
        return False
    if max((LEVELS.get(s, 0) for s in token.scope_set), default=0) < LEVELS[scope]:
        return False
    if token.namespace_id is None:
        return True
    if namespace is None:
        return False
    name = namespace.name if isinstance(namespace, Namespace) else namespace
    return token.namespace is not None and token.namespace.name == name
