"""API tokens: create one (admins, for anyone), list them (one's own, or all for admins),
revoke one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from meshkit.api import errors
from meshkit.api.deps import AUTH, LISTING, MAX_ID, MAX_TEXT, WS, Body, Id, Limit, Offset, Who, page

router = APIRouter(tags=["access"])


class TokenBody(Body):
    principal: str = Field(min_length=1, max_length=MAX_ID)
    expires_in_days: int = Field(30, ge=1, le=366)
    description: str = Field("", max_length=MAX_TEXT)


@router.post("/tokens", status_code=201, responses=errors.responses(*AUTH, 400, 403, 413, 422))
def create_token(ws: WS, who: Who, body: TokenBody) -> dict[str, Any]:
    record, token = ws.access.create_token(
        body.principal,
        ttl=timedelta(days=body.expires_in_days),
        description=body.description,
        by=who,
    )
    return {**record.to_dict(), "token": token}


@router.get("/tokens", responses=LISTING)
def list_tokens(ws: WS, who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return page([t.to_dict() for t in ws.access.list_tokens(who)], limit, offset)


@router.delete("/tokens/{token_id}", responses=errors.responses(*AUTH, 404, 422))
def revoke_token(ws: WS, who: Who, token_id: Id) -> dict[str, Any]:
    return ws.access.revoke_token(token_id, by=who).to_dict()
