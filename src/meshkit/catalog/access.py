"""The catalog's records of access control: API tokens (``catalog.tokens``) and access
requests, whose approved, unexpired ones are the grants (``catalog.access_requests``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from meshkit.catalog.access_models import AccessRequest, Token
from meshkit.catalog.backend import Backend
from meshkit.catalog.mapping import RecordMap, values_of
from meshkit.catalog.records import _Record
from meshkit.errors import ConflictError, NotFoundError


@dataclasses.dataclass(frozen=True)
class TokenRecord(_Record):
    id: str
    principal: str
    secret_hash: str
    description: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        shown = super().to_dict()
        del shown["secret_hash"]  # never leaves the catalog, even hashed
        return shown


@dataclasses.dataclass(frozen=True)
class RequestRecord(_Record):
    id: str
    product_id: str
    consumer: str
    requested_by: str
    purpose: str
    columns: list[str] | None
    ends_at: datetime
    status: str
    auto: bool
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime


TOKEN: RecordMap[TokenRecord] = RecordMap(TokenRecord)
REQUEST: RecordMap[RequestRecord] = RecordMap(RequestRecord)


class TokenRepository:
    """``catalog.tokens``: API tokens, found by id or by principal, revoked in place."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def add(self, record: TokenRecord) -> None:
        with self._backend.session(write=True) as s:
            s.add(Token(**values_of(record)))

    def get(self, token_id: str) -> TokenRecord | None:
        with self._backend.session() as s:
            row = s.get(Token, token_id)
            return None if row is None else TOKEN(row)

    def find(self, *, principal: str | None = None) -> list[TokenRecord]:
        """Tokens in the order they were created, of one principal or of all."""
        with self._backend.session() as s:
            query = select(Token).order_by(Token.created_at, Token.id)
            if principal is not None:
                query = query.where(Token.principal == principal)
            return [TOKEN(row) for row in s.scalars(query)]

    def revoke(self, token_id: str, at: datetime) -> TokenRecord:
        """Revoke the token (once: revoking again keeps the first time)."""
        with self._backend.session(write=True) as s:
            row = s.get(Token, token_id)
            if row is None:
                raise NotFoundError(
                    f"no token {token_id!r}", hint="`meshkit token list` shows the tokens"
                )
            if row.revoked_at is None:
                row.revoked_at = at
            return TOKEN(row)


class AccessRequestRepository:
    """``catalog.access_requests``: consumers' requests for products and their decisions."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def add(self, record: RequestRecord) -> None:
        with self._backend.session(write=True) as s:
            s.add(AccessRequest(**values_of(record)))

    def get(self, request_id: str) -> RequestRecord | None:
        with self._backend.session() as s:
            row = s.get(AccessRequest, request_id)
            return None if row is None else REQUEST(row)

    def find(
        self,
        *,
        products: Collection[str] | None = None,
        consumer: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[RequestRecord]:
        """Requests in the order they were made, filtered by product, consumer and status."""
        with self._backend.session() as s:
            query = select(AccessRequest).order_by(AccessRequest.created_at, AccessRequest.id)
            if products is not None:
                query = query.where(AccessRequest.product_id.in_(list(products)))
            if consumer is not None:
                query = query.where(AccessRequest.consumer == consumer)
            if statuses is not None:
                query = query.where(AccessRequest.status.in_(list(statuses)))
            return [REQUEST(row) for row in s.scalars(query)]

    def decide(
        self,
        request_id: str,
        *,
        status: str,
        by: str,
        at: datetime,
        reason: str | None,
        expected: Sequence[str],
        auto: bool = False,
    ) -> RequestRecord:
        """Move a request to `status` if it is in one of the `expected` states: a compare-and-set,
        so two owners deciding at once cannot both win."""
        with self._backend.session(write=True) as s:
            changed = s.execute(
                update(AccessRequest)
                .where(AccessRequest.id == request_id, AccessRequest.status.in_(list(expected)))
                .values(
                    status=status,
                    decided_by=by,
                    decided_at=at,
                    reason=reason,
                    **({"auto": True} if auto else {}),
                )
            )
            row = s.get(AccessRequest, request_id)
            if row is None:
                raise NotFoundError(f"no access request {request_id!r}")
            if getattr(changed, "rowcount", 0) != 1:
                raise ConflictError(
                    f"access request {request_id} is {row.status}, not {' or '.join(expected)}",
                    hint="list requests again to see their current state",
                )
            s.refresh(row)
            return REQUEST(row)
