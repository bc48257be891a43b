"""`POST /query`: a consumer's SQL, run in a worker thread within the query slots (stopped
when the client leaves), answered as JSON, CSV or an Arrow stream."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from meshkit.access.query import Cancel
from meshkit.api import errors
from meshkit.api.deps import AUTH, MAX_INT, MAX_SQL, WS, Body, Who
from meshkit.api.limits import QueryRunner
from meshkit.catalog.records import jsonable

router = APIRouter(tags=["query"])


class QueryBody(Body):
    sql: str = Field(
        min_length=1, max_length=MAX_SQL, description="One SELECT over <domain>.<product> tables."
    )
    format: Literal["json", "csv", "arrow"] = "json"
    version: int | None = Field(
        None, ge=0, le=MAX_INT, description="Time travel: this table version."
    )
    as_of: datetime | None = Field(None, description="Time travel: the version at this time.")
    max_rows: int | None = Field(None, ge=1, le=MAX_INT)


@router.post(
    "/query",
    response_model=None,
    responses={
        200: {
            "description": "The rows, in the format asked for.",
            "content": {"text/csv": {}, "application/vnd.apache.arrow.stream": {}},
            "headers": {
                "X-Meshkit-Rows": {"schema": {"type": "integer"}},
                "X-Meshkit-Truncated": {"schema": {"type": "string", "enum": ["true", "false"]}},
            },
        },
        **errors.responses(*AUTH, 400, 403, 404, 413, 422),
    },
)
async def query(request: Request, ws: WS, who: Who, body: QueryBody) -> Response:
    """Runs in a worker thread within the query slots; stopped when the client leaves."""
    queries: QueryRunner = request.app.state.queries
    as_of = (
        body.as_of if body.as_of is None or body.as_of.tzinfo else body.as_of.replace(tzinfo=UTC)
    )

    def work(cancel: Cancel) -> Response:
        result = ws.access.query(
            who,
            body.sql,
            version=body.version,
            as_of=as_of,
            max_rows=body.max_rows,
            cancel=cancel,
        )
        return _answer(result.table, result.truncated, result.masked, body.format)

    return await queries.run(request, work)


def _answer(table: pa.Table, truncated: bool, masked: dict[str, list[str]], fmt: str) -> Response:
    headers = {
        "X-Meshkit-Rows": str(table.num_rows),
        "X-Meshkit-Truncated": str(truncated).lower(),
    }
    if fmt == "arrow":
        return StreamingResponse(
            _arrow(table), media_type="application/vnd.apache.arrow.stream", headers=headers
        )
    if fmt == "csv":
        return StreamingResponse(_csv(table), media_type="text/csv", headers=headers)
    return JSONResponse(
        {
            "columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "rows": jsonable([list(r.values()) for r in table.to_pylist()]),
            "row_count": table.num_rows,
            "truncated": truncated,
            "masked": masked,
        },
        headers=headers,
    )


def _arrow(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        yield _drain(sink)
        for batch in table.to_batches(max_chunksize=8192):
            writer.write_batch(batch)
            yield _drain(sink)
    yield _drain(sink)


def _csv(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pacsv.CSVWriter(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=8192):
            writer.write_batch(batch)
            yield _drain(sink)
    yield _drain(sink)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
