"""What every route module shares: the Workspace and the caller as FastAPI dependencies, the
bounds on every number and string a request carries, the error statuses each kind of
operation declares, and pagination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from meshkit.access.identity import Caller
from meshkit.api import errors
from meshkit.workspace import Workspace

MAX_PAGE = 500
# Every number and string a request carries is bounded here, before any library sees it.
MAX_INT = 2**53 - 1  # the largest integer every JSON parser reads exactly
MAX_ID = 200  # product, request and token ids, principals, search text
MAX_TEXT = 2_000  # purposes, reasons, descriptions
MAX_SQL = 100_000  # characters of one query
MAX_COLUMNS = 1_000
MAX_BODY = 4 << 20  # bytes of a request body: more than any valid one, JSON-escaped


def workspace(request: Request) -> Workspace:
    """The Workspace the app serves (`create_app` puts it in `app.state`)."""
    ws: Workspace = request.app.state.workspace
    return ws


def caller(request: Request) -> Caller:
    """The caller a request's bearer token stands for (401 otherwise)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return workspace(request).access.authenticate(
        token.strip() if scheme.lower() == "bearer" else None
    )


WS = Annotated[Workspace, Depends(workspace)]
Who = Annotated[Caller, Depends(caller)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
Id = Annotated[str, Path(max_length=MAX_ID)]
Text = Annotated[str | None, Query(max_length=MAX_ID)]

# The errors each kind of operation answers (declared in the OpenAPI document). Every
# operation with a token can meet 401, and 503 (busy, or the catalog unreachable).
AUTH = (401, 503)
LISTING = errors.responses(*AUTH, 422)
PRODUCT = errors.responses(*AUTH, 403, 422)
DECISION = errors.responses(*AUTH, 403, 409, 413, 422)


class Body(BaseModel):
    """A request body: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


def page(items: list[Any], limit: int, offset: int, *, total: int | None = -1) -> dict[str, Any]:
    count = len(items) if total == -1 else total
    chunk = items[offset : offset + limit]
    more = offset + len(chunk) < len(items)
    return {
        "items": chunk,
        "total": count,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(chunk) if more else None,
    }
