"""The ASGI app uvicorn serves (`meshkit serve`): the mesh named by MESHKIT_MESH, with the
limits of `meshkit serve`'s flags (MESHKIT_MAX_QUERIES, MESHKIT_MAX_REQUESTS,
MESHKIT_QUEUE_TIMEOUT; see meshkit.api.limits)."""

from __future__ import annotations

import os
from pathlib import Path

from meshkit.api.app import create_app
from meshkit.api.limits import Limits
from meshkit.workspace import Workspace

app = create_app(Workspace.open(Path(os.environ.get("MESHKIT_MESH", "."))), Limits.from_env())
