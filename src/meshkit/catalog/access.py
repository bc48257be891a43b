"""Catalog records of access control: API tokens and access requests (grants)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from meshkit.catalog.access_models import AccessRequest, Token
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


class AccessRecords:
    """Mixed into Catalog: it provides `_session`."""

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError  # pragma: no cover - Catalog implements it

    # -- tokens --------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self._session(write=True) as s:
            s.add(Token(**_fields(record)))

    def token(self, token_id: str) -> TokenRecord | None:
        with self._session() as s:
            row = s.get(Token, token_id)
            return None if row is None else _token(row)

    def tokens(self, principal: str | None = None) -> list[TokenRecord]:
        with self._session() as s:
            query = select(Token).order_by(Token.created_at, Token.id)
            if principal is not None:
                query = query.where(Token.principal == principal)
            return [_token(row) for row in s.scalars(query)]

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord:
        with self._session(write=True) as s:
            row = s.get(Token, token_id)
            if row is None:
                raise NotFoundError(
                    f"no token {token_id!r}", hint="`meshkit token list` shows the tokens"
                )
            if row.revoked_at is None:
                row.revoked_at = at
            return _token(row)

    # -- access requests -----------------------------------------------------------------

    def add_request(self, record: RequestRecord) -> None:
        with self._session(write=True) as s:
            s.add(AccessRequest(**_fields(record)))

    def access_request(self, request_id: str) -> RequestRecord | None:
        with self._session() as s:
            row = s.get(AccessRequest, request_id)
            return None if row is None else _request(row)

    def access_requests(
        self,
        *,
        products: Collection[str] | None = None,
        consumer: str | None = None,
        statuses: Collection[str] | None = None,
    ) -> list[RequestRecord]:
        with self._session() as s:
            query = select(AccessRequest).order_by(AccessRequest.created_at, AccessRequest.id)
            if products is not None:
                query = query.where(AccessRequest.product_id.in_(list(products)))
            if consumer is not None:
                query = query.where(AccessRequest.consumer == consumer)
            if statuses is not None:
                query = query.where(AccessRequest.status.in_(list(statuses)))
            return [_request(row) for row in s.scalars(query)]

    def decide_request(
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
        with self._session(write=True) as s:
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
            return _request(row)


def _fields(record: TokenRecord | RequestRecord) -> dict[str, Any]:
    """A record's values by name: its model has a column of the same name for each."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _token(row: Token) -> TokenRecord:
    return TokenRecord(**{f.name: getattr(row, f.name) for f in dataclasses.fields(TokenRecord)})


def _request(row: AccessRequest) -> RequestRecord:
    return RequestRecord(
        **{f.name: getattr(row, f.name) for f in dataclasses.fields(RequestRecord)}
    )
