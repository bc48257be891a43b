"""The API's endpoints, one module per area, each an `APIRouter` whose routes authenticate,
call one Workspace method (or `Workspace.access`), and shape the answer; the decisions live
in `meshkit.access`.

`ROUTERS` is the order `create_app` includes them in, which is the order of the paths in the
OpenAPI document. A new endpoint goes into the module of its area (or a new module listed
here), declares its errors with `errors.responses(...)`, and takes the Workspace and the
caller as the dependencies `deps.WS` and `deps.Who`.
"""

from fastapi import APIRouter

from meshkit.api.routes import access, audit, discovery, meta, query, tokens

ROUTERS: tuple[APIRouter, ...] = (
    meta.router,
    discovery.router,
    access.router,
    tokens.router,
    query.router,
    audit.router,
)

__all__ = ["ROUTERS"]
