"""API tokens: shown once, stored as a SHA-256 hash, expiring, revocable.

A token reads `mk_<id>_<secret>`. The id finds the row; the secret (256 random bits) is
compared by hash in constant time. A plain hash is enough for a random secret of that size
(unlike a password, it cannot be guessed from a dictionary), and it keeps every request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from meshkit.access.identity import Caller, known_principals, resolve
from meshkit.catalog import Catalog
from meshkit.catalog.access import TokenRecord
from meshkit.errors import AuthError, MeshkitError, TokenExpiry
from meshkit.specs.mesh import Mesh
from meshkit.specs.models import format_duration

PREFIX = "mk_"
MAX_TTL = timedelta(days=366)


def create(
    catalog: Catalog,
    mesh: Mesh,
    principal: str,
    *,
    ttl: timedelta,
    description: str,
    created_by: str,
    now: datetime,
) -> tuple[TokenRecord, str]:
    """A new token for `principal`: its record and the token itself (not stored anywhere)."""
    if principal not in known_principals(mesh):
        raise MeshkitError(
            f"unknown principal {principal!r}: a token is only made for someone the mesh names",
            hint="add them to a domain's members or to access.principals in mesh.yaml",
        )
    if not timedelta(0) < ttl <= MAX_TTL:
        raise MeshkitError(
            f"a token must expire within {MAX_TTL.days} days (asked for {format_duration(ttl)})",
            hint=TokenExpiry(max_days=MAX_TTL.days),
        )
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(
        id=token_id,
        principal=principal,
        secret_hash=_hash(secret),
        description=description,
        created_by=created_by,
        created_at=now,
        expires_at=now + ttl,
        revoked_at=None,
    )
    catalog.tokens.add(record)
    return record, f"{PREFIX}{token_id}_{secret}"


def authenticate(catalog: Catalog, mesh: Mesh, token: str | None, now: datetime) -> Caller:
    """The Caller a token stands for; AuthError (one message for every reason, so a guesser
    learns nothing) when it is missing, malformed, unknown, wrong, expired or revoked."""
    if not token or not token.startswith(PREFIX):
        raise AuthError(_INVALID, hint=_HINT)
    token_id, _, secret = token.removeprefix(PREFIX).partition("_")
    record = catalog.tokens.get(token_id) if token_id and secret else None
    if (
        record is None
        or not hmac.compare_digest(record.secret_hash, _hash(secret))
        or record.revoked_at is not None
        or record.expires_at <= now
    ):
        raise AuthError(_INVALID, hint=_HINT)
    try:
        return resolve(mesh, record.principal)
    except MeshkitError as err:  # removed from the specs since the token was made
        raise AuthError(_INVALID, hint=_HINT) from err


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_INVALID = "missing, invalid, expired or revoked token"
_HINT = "send 'Authorization: Bearer <token>'; `meshkit token create` makes one"
