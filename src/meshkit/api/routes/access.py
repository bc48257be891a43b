"""The access workflow: request access to a product, list and decide requests (owners),
revoke grants, list one's grants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from meshkit.api import errors
from meshkit.api.deps import (
    AUTH,
    DECISION,
    LISTING,
    MAX_COLUMNS,
    MAX_ID,
    MAX_TEXT,
    WS,
    Body,
    Id,
    Limit,
    Offset,
    Who,
    page,
)

router = APIRouter(tags=["access"])


class AccessRequestBody(Body):
    product: str = Field(max_length=MAX_ID, description="<domain>.<product>")
    purpose: str = Field(min_length=10, max_length=MAX_TEXT, description="What the data is for.")
    until: date = Field(description="Last day of the grant.")
    columns: list[Annotated[str, Field(max_length=MAX_ID)]] | None = Field(
        None, max_length=MAX_COLUMNS, description="Columns asked for; all when omitted."
    )
    consumer: str | None = Field(
        None, max_length=MAX_ID, description="product:<id> to request for a product."
    )


class DecisionBody(Body):
    reason: str | None = Field(None, max_length=MAX_TEXT)


@router.post(
    "/access/requests", status_code=201, responses=errors.responses(*AUTH, 400, 403, 413, 422)
)
def request_access(ws: WS, who: Who, req: AccessRequestBody) -> dict[str, Any]:
    until = datetime.combine(req.until, time.max, tzinfo=UTC)
    record = ws.access.request(
        who,
        req.product,
        purpose=req.purpose,
        until=until,
        columns=req.columns,
        consumer=req.consumer,
    )
    return record.to_dict()


@router.get("/access/requests", responses=LISTING)
def pending(ws: WS, who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return page([r.to_dict() for r in ws.access.pending(who)], limit, offset)


@router.post("/access/requests/{request_id}/approve", responses=DECISION)
def approve(ws: WS, who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
    return ws.access.approve(who, request_id, body.reason if body else None).to_dict()


@router.post("/access/requests/{request_id}/deny", responses=DECISION)
def deny(ws: WS, who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
    return ws.access.deny(who, request_id, body.reason if body else None).to_dict()


@router.post("/access/grants/{request_id}/revoke", responses=DECISION)
def revoke(ws: WS, who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
    return ws.access.revoke(who, request_id, body.reason if body else None).to_dict()


@router.get("/access/grants", responses=LISTING)
def grants(ws: WS, who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    return page([r.to_dict() for r in ws.access.grants(who)], limit, offset)
