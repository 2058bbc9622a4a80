"""API tokens: created once and shown once, stored as SHA-256 hashes, revoked, never recovered.

A token is ``ss_`` + 32 random bytes (URL-safe base64): far too much entropy to guess, so a
plain SHA-256 (as GitHub and PyPI do for their tokens) is enough; no salt or slow hash needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from soup_search.errors import SoupSearchError
from soup_search.service.models import SCOPES, Token, utcnow

PREFIX = "ss_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(s: Session, name: str, scope: str) -> tuple[Token, str]:
    """A new token row and its secret (the only time the secret exists outside the caller)."""
    if scope not in SCOPES:
        raise SoupSearchError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if not name or len(name) > 100:
        raise SoupSearchError("a token needs a name of 1 to 100 characters (--name)")
    if s.scalar(select(Token).where(Token.name == name)) is not None:
        raise SoupSearchError(f"a token named {name!r} exists; pick another --name or revoke it first")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = Token(name=name, scope=scope, prefix=secret[:10], secret_hash=hash_secret(secret), created_at=utcnow())
    s.add(token)
    s.flush()
    return token, secret


def find_token(s: Session, secret: str) -> Token | None:
    """The live token with this secret, or None (unknown or revoked)."""
    if not secret.startswith(PREFIX):
        return None
    digest = hash_secret(secret)
    token = s.scalar(select(Token).where(Token.secret_hash == digest))
    if token is None or token.revoked_at is not None or not hmac.compare_digest(token.secret_hash, digest):
        return None
    return token


def revoke_token(s: Session, name: str) -> Token:
    token = s.scalar(select(Token).where(Token.name == name))
    if token is None:
        raise SoupSearchError(f"no token named {name!r}; see soup-search tokens list")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def list_tokens(s: Session) -> list[Token]:
    return list(s.scalars(select(Token).order_by(Token.id)))


def live_token_count(s: Session) -> int:
    return len(list(s.scalars(select(Token.id).where(Token.revoked_at.is_(None)))))


def allows(scope: str, needed: str) -> bool:
    """Whether a token of ``scope`` may do what needs ``needed`` (read < write < admin)."""
    return SCOPES.index(scope) >= SCOPES.index(needed)
