"""One JSON error shape for every error the API returns:

{"error": {"status": 403, "code": "access_denied", "message": "...", "hint": "..."}}

`responses()` declares it in the OpenAPI document, for the statuses each operation returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from meshkit.errors import HTTP_STATUS, CatalogError, MeshkitError, SpecError

log = logging.getLogger("meshkit.api")

RETRY_AFTER_S = 1  # what a 503 tells the client to wait before trying again

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
}
_BODY_HINT = "see GET /docs for the request shapes"


class FieldProblem(BaseModel):
    field: str = Field(description="Where: `body.sql`, `query.limit`, ...")
    message: str


class ErrorDetail(BaseModel):
    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(description="A stable name for the kind of error, e.g. `access_denied`.")
    message: str
    hint: str | None = Field(description="What to do about it, when there is something.")
    fields: list[FieldProblem] | None = Field(
        None, description="422 only: each problem with the request."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Understood but failed: SQL that does not parse or fails, a rule of the request.",
    401: "Missing, invalid, expired or revoked token.",
    403: "Not allowed, refused, or hidden (a hidden thing answers like a missing one).",
    404: "No such version or token.",
    409: "The request is no longer in the state the decision expects.",
    413: "The body is larger than the server accepts.",
    422: "The body or a parameter does not fit its shape (also a body that is not JSON).",
    503: "Busy (too much work in flight) or the catalog is unreachable: retry after "
    "`Retry-After` seconds.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    503: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 1},
            "description": "Seconds to wait before trying again.",
        }
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of an operation's errors, each with the one shape."""
    return {
        status: {
            "model": ErrorBody,
            "description": _DESCRIPTIONS[status],
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


class Busy(Exception):
    """The server has too much work in flight to take this request: 503, `Retry-After`."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BodyTooLarge(Exception):
    """A body that passed the size limit while it was read (one without Content-Length)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


def body(
    status: int, code: str, message: str, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "hint": hint, **extra}}


def busy(message: str, hint: str) -> JSONResponse:
    """The 503 of a server with too much work in flight."""
    return JSONResponse(
        body(503, "busy", message, hint), 503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


def too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        body(
            413,
            "too_large",
            f"the body is larger than the {limit} bytes the server accepts",
            "send a shorter query or fewer columns",
        ),
        413,
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(MeshkitError)
    async def meshkit_error(_: Request, err: MeshkitError) -> JSONResponse:
        status, code = next((s, c) for cls, s, c in HTTP_STATUS if isinstance(err, cls))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(err, CatalogError):
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        problems = [p.to_dict() for p in err.problems] if isinstance(err, SpecError) else None
        extra = {"problems": problems} if problems else {}
        return JSONResponse(
            body(status, code, err.message, err.hint_for("api"), **extra), status, headers=headers
        )

    @app.exception_handler(Busy)
    async def refused(_: Request, err: Busy) -> JSONResponse:
        return busy(err.message, err.hint)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        fields = [_field_problem(e) for e in err.errors()]
        return _invalid(fields)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        if err.status_code == 400:
            # FastAPI's body reader: a body it could not decode (not UTF-8, say) is as
            # invalid as one that is not JSON, and answers the same way
            if isinstance(err.__cause__, BodyTooLarge):
                return too_large(err.__cause__.limit)
            return _invalid([{"field": "body", "message": "the body is not UTF-8 JSON"}])
        headers = dict(err.headers or {})
        if err.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code = _HTTP_CODES.get(err.status_code, "error")
        return JSONResponse(
            body(err.status_code, code, str(err.detail)), err.status_code, headers=headers
        )

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=err)
        return JSONResponse(
            body(500, "internal", "internal error; the server log has the details"), 500
        )


def _field_problem(error: Any) -> dict[str, str]:
    loc = [str(p) for p in error.get("loc", ())]
    kind = error.get("type", "")
    if kind == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        reason = error.get("ctx", {}).get("error", "")
        return {"field": "body", "message": f"the body is not valid JSON{where}: {reason}"}
    if loc == ["body"] and kind in ("model_attributes_type", "dict_type"):
        return {"field": "body", "message": "the body must be a JSON object"}
    return {
        "field": ".".join(p for p in loc if p != "body") or "body",
        "message": error.get("msg", ""),
    }


def _invalid(fields: list[dict[str, str]]) -> JSONResponse:
    first = fields[0] if fields else {"field": "", "message": "invalid request"}
    where = first["field"] not in ("", "body")
    message = f"{first['field']}: {first['message']}" if where else first["message"]
    return JSONResponse(
        body(422, "invalid_request", message, _BODY_HINT, fields=fields),
        422,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path serves (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes of the app, those of its included routers too (FastAPI keeps an included
    router as one entry that holds the router; the routers carry no path prefix)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            yield from _routes(included.routes)
        else:
            yield route
