"""Routes. Each one authenticates, calls one Workspace (or `Workspace.access`) method, and
shapes the answer; the decisions live in meshkit.access."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from meshkit.access.identity import Caller
from meshkit.access.query import Cancel
from meshkit.api import errors
from meshkit.api.limits import InFlight, Limits, QueryRunner, Slots
from meshkit.catalog.records import jsonable
from meshkit.workspace import Workspace

MAX_PAGE = 500
# Every number and string a request carries is bounded here, before any library sees it.
MAX_INT = 2**53 - 1  # the largest integer every JSON parser reads exactly
MAX_ID = 200  # product, request and token ids, principals, search text
MAX_TEXT = 2_000  # purposes, reasons, descriptions
MAX_SQL = 100_000  # characters of one query
MAX_COLUMNS = 1_000
MAX_BODY = 4 << 20  # bytes of a request body: more than any valid one, JSON-escaped


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccessRequestBody(_Body):
    product: str = Field(max_length=MAX_ID, description="<domain>.<product>")
    purpose: str = Field(min_length=10, max_length=MAX_TEXT, description="What the data is for.")
    until: date = Field(description="Last day of the grant.")
    columns: list[Annotated[str, Field(max_length=MAX_ID)]] | None = Field(
        None, max_length=MAX_COLUMNS, description="Columns asked for; all when omitted."
    )
    consumer: str | None = Field(
        None, max_length=MAX_ID, description="product:<id> to request for a product."
    )


class DecisionBody(_Body):
    reason: str | None = Field(None, max_length=MAX_TEXT)


class QueryBody(_Body):
    sql: str = Field(
        min_length=1, max_length=MAX_SQL, description="One SELECT over <domain>.<product> tables."
    )
    format: Literal["json", "csv", "arrow"] = "json"
    version: int | None = Field(
        None, ge=0, le=MAX_INT, description="Time travel: this table version."
    )
    as_of: datetime | None = Field(None, description="Time travel: the version at this time.")
    max_rows: int | None = Field(None, ge=1, le=MAX_INT)


class TokenBody(_Body):
    principal: str = Field(min_length=1, max_length=MAX_ID)
    expires_in_days: int = Field(30, ge=1, le=366)
    description: str = Field("", max_length=MAX_TEXT)


def caller(request: Request) -> Caller:
    """The caller a request's bearer token stands for (401 otherwise)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    ws: Workspace = request.app.state.workspace
    return ws.access.authenticate(token.strip() if scheme.lower() == "bearer" else None)


Who = Annotated[Caller, Depends(caller)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT)]
Id = Annotated[str, Path(max_length=MAX_ID)]
Text = Annotated[str | None, Query(max_length=MAX_ID)]

# The errors each kind of operation answers (declared in the OpenAPI document). Every
# operation with a token can meet 401, and 503 (busy, or the catalog unreachable).
_AUTH = (401, 503)
LISTING = errors.responses(*_AUTH, 422)
PRODUCT = errors.responses(*_AUTH, 403, 422)
DECISION = errors.responses(*_AUTH, 403, 409, 413, 422)


def create_app(ws: Workspace, limits: Limits | None = None) -> FastAPI:
    # load the specs, open the catalog and the audit key once, before requests run in threads
    ws.mesh  # noqa: B018
    ws.access  # noqa: B018
    if ws.mesh.spec.settings.audit.enabled:
        ws.audit  # noqa: B018
    limits = limits or Limits.default()
    queries = QueryRunner(limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        # after uvicorn's graceful wait (`timeout_graceful_shutdown`): whatever still runs
        queries.running.stop_all("the server is stopping")
        await queries.running.drained(timeout=3)

    app = FastAPI(
        title="meshkit",
        version="1",
        description="Data products of the mesh: discover them, request access, query them.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(
        InFlight,
        slots=Slots(limits.max_requests),
        timeout=limits.queue_timeout,
        max_body=MAX_BODY,
    )
    app.state.workspace = ws
    app.state.limits = limits
    app.state.queries = queries

    @app.get("/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me", tags=["meta"], responses=errors.responses(*_AUTH))
    def me(who: Who) -> dict[str, Any]:
        return who.to_dict()

    # -- discovery -------------------------------------------------------------------------

    @app.get("/domains", tags=["discovery"], responses=LISTING)
    def domains(who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        items = [
            {
                "name": d.name,
                "description": d.spec.description,
                "type": str(d.spec.type),
                "owner": d.spec.owner,
                "products": sorted(
                    p.id for p in ws.access.visible_products(who) if p.domain == d.name
                ),
            }
            for _, d in sorted(ws.mesh.domains.items())
        ]
        return page(items, limit, offset)

    @app.get("/products", tags=["discovery"], responses=LISTING)
    def products(
        who: Who,
        limit: Limit = 50,
        offset: Offset = 0,
        q: Text = None,
        domain: Text = None,
    ) -> dict[str, Any]:
        return page(jsonable(ws.products_for(who, search=q, domain=domain)), limit, offset)

    @app.get("/products/{product_id}", tags=["discovery"], responses=PRODUCT)
    def product(who: Who, product_id: Id) -> dict[str, Any]:
        p = ws.access.product(who, product_id)
        published = ws.product_versions(who, product_id)
        shown: dict[str, Any] = jsonable(
            {
                "id": p.id,
                "domain": p.domain,
                "name": p.spec.name,
                "version": p.spec.version,
                "status": str(p.spec.status),
                "description": p.spec.description,
                "tags": list(p.spec.tags),
                "classification": str(p.spec.classification),
                "owner": p.spec.owner.model_dump(mode="json", exclude_none=True),
                "latest_version": published[-1].to_dict() if published else None,
            }
        )
        return shown

    @app.get("/products/{product_id}/schema", tags=["discovery"], responses=PRODUCT)
    def schema(who: Who, product_id: Id) -> dict[str, Any]:
        p = ws.access.product(who, product_id)
        return {
            "product": p.id,
            "columns": [
                c.model_dump(mode="json", exclude_none=True) for c in p.spec.schema_.columns
            ],
        }

    @app.get("/products/{product_id}/versions", tags=["discovery"], responses=PRODUCT)
    def versions(who: Who, product_id: Id, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        rows = ws.product_versions(who, product_id)
        return page([r.to_dict() for r in reversed(rows)], limit, offset)

    @app.get("/products/{product_id}/runs", tags=["discovery"], responses=PRODUCT)
    def runs(who: Who, product_id: Id, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        """Outside the owning domain, without error texts, hosts and process ids."""
        # one more than the page, to know whether another page follows
        rows = ws.product_runs(who, product_id, limit=limit + 1, offset=offset)
        return {
            "items": rows[:limit],
            "total": None,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
        }

    @app.get("/products/{product_id}/quality", tags=["discovery"], responses=PRODUCT)
    def quality(who: Who, product_id: Id) -> dict[str, Any]:
        """Members of the owning domain see measured values, messages and failing rows;
        everyone else sees which checks passed (those details are unmasked, unfiltered data)."""
        results = ws.product_quality(who, product_id)
        return {"product": product_id, "run": results.run, "checks": results.checks}

    @app.get("/products/{product_id}/lineage", tags=["discovery"], responses=PRODUCT)
    def lineage(who: Who, product_id: Id) -> dict[str, Any]:
        lineage = ws.product_lineage(who, product_id)
        return {"product": product_id, "edges": lineage.edges, "columns": lineage.columns}

    # -- access ----------------------------------------------------------------------------

    @app.post(
        "/access/requests",
        status_code=201,
        tags=["access"],
        responses=errors.responses(*_AUTH, 400, 403, 413, 422),
    )
    def request_access(who: Who, req: AccessRequestBody) -> dict[str, Any]:
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

    @app.get("/access/requests", tags=["access"], responses=LISTING)
    def pending(who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        return page([r.to_dict() for r in ws.access.pending(who)], limit, offset)

    @app.post("/access/requests/{request_id}/approve", tags=["access"], responses=DECISION)
    def approve(who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
        return ws.access.approve(who, request_id, body.reason if body else None).to_dict()

    @app.post("/access/requests/{request_id}/deny", tags=["access"], responses=DECISION)
    def deny(who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
        return ws.access.deny(who, request_id, body.reason if body else None).to_dict()

    @app.post("/access/grants/{request_id}/revoke", tags=["access"], responses=DECISION)
    def revoke(who: Who, request_id: Id, body: DecisionBody | None = None) -> dict[str, Any]:
        return ws.access.revoke(who, request_id, body.reason if body else None).to_dict()

    @app.get("/access/grants", tags=["access"], responses=LISTING)
    def grants(who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        return page([r.to_dict() for r in ws.access.grants(who)], limit, offset)

    @app.post(
        "/tokens",
        status_code=201,
        tags=["access"],
        responses=errors.responses(*_AUTH, 400, 403, 413, 422),
    )
    def create_token(who: Who, body: TokenBody) -> dict[str, Any]:
        record, token = ws.access.create_token(
            body.principal,
            ttl=timedelta(days=body.expires_in_days),
            description=body.description,
            by=who,
        )
        return {**record.to_dict(), "token": token}

    @app.get("/tokens", tags=["access"], responses=LISTING)
    def list_tokens(who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
        return page([t.to_dict() for t in ws.access.list_tokens(who)], limit, offset)

    @app.delete("/tokens/{token_id}", tags=["access"], responses=errors.responses(*_AUTH, 404, 422))
    def revoke_token(who: Who, token_id: Id) -> dict[str, Any]:
        return ws.access.revoke_token(token_id, by=who).to_dict()

    # -- query -----------------------------------------------------------------------------

    @app.post(
        "/query",
        tags=["query"],
        response_model=None,
        responses={
            200: {
                "description": "The rows, in the format asked for.",
                "content": {"text/csv": {}, "application/vnd.apache.arrow.stream": {}},
                "headers": {
                    "X-Meshkit-Rows": {"schema": {"type": "integer"}},
                    "X-Meshkit-Truncated": {
                        "schema": {"type": "string", "enum": ["true", "false"]}
                    },
                },
            },
            **errors.responses(*_AUTH, 400, 403, 404, 413, 422),
        },
    )
    async def query(request: Request, who: Who, body: QueryBody) -> Response:
        """Runs in a worker thread within the query slots; stopped when the client leaves."""
        as_of = (
            body.as_of
            if body.as_of is None or body.as_of.tzinfo
            else body.as_of.replace(tzinfo=UTC)
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

    # -- audit -----------------------------------------------------------------------------

    @app.get("/audit/verify", tags=["audit"], responses=errors.responses(*_AUTH, 403))
    def audit_verify(who: Who) -> dict[str, Any]:
        result = ws.verify_audit_as(who)
        return {
            "ok": result.ok,
            "entries": result.entries,
            "checkpoints": result.checkpoints,
            "first_bad": result.first_bad,
            "problem": result.problem,
        }

    return app


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
