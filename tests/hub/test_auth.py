"""API tokens on both databases: only the hash is stored, scopes nest, namespaces restrict, revocation sticks."""
from __future__ import annotations

from sqlalchemy import select

from hub import auth, registry
from hub.models import ApiToken


def test_tokens_store_only_a_hash_and_scopes_nest(session_factory):
    with session_factory() as s:
        plain = auth.create_token(s, "team", {"write"})
        admin = auth.create_token(s, None, {"admin"})
        s.commit()
        token = auth.authenticate(s, plain)
        assert token.token_hash != plain and plain not in token.token_hash
        assert auth.allows(token, "team", "read") and auth.allows(token, "team", "write")
        assert not auth.allows(token, "team", "admin") and not auth.allows(token, "other", "read")
        assert not auth.allows(token, None, "read")
        assert auth.allows(auth.authenticate(s, admin), "anything", "write")
        auth.revoke(s, plain)
        s.commit()
        assert auth.authenticate(s, plain) is None
        assert auth.authenticate(s, "ada_unknown") is None


def test_the_plaintext_is_never_stored(session_factory):
    with session_factory() as s:
        plain = auth.create_token(s, None, {"read"})
        s.commit()
        rows = s.scalars(select(ApiToken)).all()
        assert plain.startswith("ada_") and len(plain) == 44
        assert [(r.token_hash, r.prefix) for r in rows] == [(auth.hash_token(plain), plain[:16])]


def test_public_namespaces_are_readable_without_a_token_private_ones_are_not(session_factory):
    with session_factory() as s:
        public = registry.ensure_namespace(s, "open", private=False)
        private = registry.ensure_namespace(s, "closed", private=True)
        s.commit()
        assert auth.allows(None, public, "read") and not auth.allows(None, public, "write")
        assert not auth.allows(None, private, "read")
