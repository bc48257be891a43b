"""`meshkit serve`: the HTTP API over this mesh, in uvicorn worker processes, with the
limits of its flags (passed to each worker through the environment)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshkit.cli import render
from meshkit.cli.options import MeshOption
from meshkit.workspace import Workspace


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    max_queries: Annotated[
        int | None,
        typer.Option(
            min=1, max=10_000, help="Queries running at once, per worker. Default: the cores."
        ),
    ] = None,
    max_requests: Annotated[
        int, typer.Option(min=1, max=10_000, help="Requests in flight at once, per worker.")
    ] = 32,
    queue_timeout: Annotated[
        float,
        typer.Option(min=0, max=600, help="Seconds a request waits for a free slot, then 503."),
    ] = 1.0,
    shutdown_timeout: Annotated[
        int,
        typer.Option(min=0, max=600, help="Seconds running requests get to finish when stopping."),
    ] = 2,
    mesh: MeshOption = None,
) -> None:
    """Serve the API (OpenAPI at /docs) over this mesh."""
    import os

    import uvicorn

    from meshkit.api.limits import Limits

    with Workspace.open(mesh) as ws:
        ws.mesh  # noqa: B018 - invalid specs stop here, with their problems, not in the server
        root = ws.root
    limits = Limits(
        max_queries=max_queries or Limits.default().max_queries,
        max_requests=max_requests,
        queue_timeout=queue_timeout,
    )
    os.environ["MESHKIT_MESH"] = str(root)
    os.environ.update(limits.to_env())  # read by each worker process (meshkit.api.server)
    render.err.print(f"serving {root} on http://{host}:{port} (OpenAPI: /docs)")
    uvicorn.run(
        "meshkit.api.server:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=shutdown_timeout,
    )
