"""The FastAPI app of `meshkit serve`: `create_app` opens what requests share, installs the
error handlers and the in-flight limits, and includes the routers of `meshkit.api.routes`
(one module per area: discovery, access, tokens, query, audit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from meshkit.api import errors
from meshkit.api.deps import MAX_BODY
from meshkit.api.limits import InFlight, Limits, QueryRunner, Slots
from meshkit.api.routes import ROUTERS
from meshkit.workspace import Workspace


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
    for router in ROUTERS:
        app.include_router(router)
    return app
