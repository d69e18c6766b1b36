"""API tokens: created once and shown once, stored as sha256, scoped (read < write < admin) to one namespace or all.

A token with no namespace covers every namespace; hub-wide operations (registering bases, creating namespaces) need
such a token with admin scope. sha256 without a salt is enough here because tokens are 240 random bits, not passwords.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ApiToken, Namespace, utcnow
from hub.registry import Invalid, ensure_namespace

LEVELS = {"read": 1, "write": 2, "admin": 3}


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_token(session: Session, namespace: str | None, scopes: set[str]) -> str:
    """Make a token and return its plaintext (the only time it exists); the caller commits."""
    unknown = set(scopes) - set(LEVELS)
    if not scopes or unknown:
        raise Invalid(f"scopes must be some of {', '.join(LEVELS)}; got {sorted(scopes)}")
    ns_id = ensure_namespace(session, namespace).id if namespace else None
    plaintext = "ada_" + secrets.token_urlsafe(30)
    session.add(ApiToken(token_hash=hash_token(plaintext), prefix=plaintext[:8], namespace_id=ns_id,
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
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(plaintext))).first()
    if token is None:
        return False
    token.revoked = True
    session.flush()
    return True


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
