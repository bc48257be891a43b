"""One JSON error shape for every error the API returns:

{"error": {"status": 403, "code": "access_denied", "message": "...", "hint": "..."}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from meshkit.errors import HTTP_STATUS, MeshkitError, SpecError

log = logging.getLogger("meshkit.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
}


def body(
    status: int, code: str, message: str, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {"error": {"status": status, "code": code, "message": message, "hint": hint, **extra}}


def install(app: FastAPI) -> None:
    @app.exception_handler(MeshkitError)
    async def meshkit_error(_: Request, err: MeshkitError) -> JSONResponse:
        status, code = next((s, c) for cls, s, c in HTTP_STATUS if isinstance(err, cls))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        problems = [p.to_dict() for p in err.problems] if isinstance(err, SpecError) else None
        extra = {"problems": problems} if problems else {}
        return JSONResponse(
            body(status, code, err.message, err.hint_for("api"), **extra), status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": e.get("msg", ""),
            }
            for e in err.errors()
        ]
        first = fields[0] if fields else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return JSONResponse(
            body(
                422,
                "invalid_request",
                message,
                "see GET /docs for the request shapes",
                fields=fields,
            ),
            422,
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(err.status_code, "error")
        return JSONResponse(
            body(err.status_code, code, str(err.detail)), err.status_code, headers=err.headers
        )

    @app.exception_handler(Exception)
    async def internal(_: Request, err: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=err)
        return JSONResponse(
            body(500, "internal", "internal error; the server log has the details"), 500
        )
