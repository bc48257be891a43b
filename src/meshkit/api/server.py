"""The ASGI app uvicorn serves (`meshkit serve`): the mesh named by MESHKIT_MESH."""

from __future__ import annotations

import os
from pathlib import Path

from meshkit.api.app import create_app
from meshkit.workspace import Workspace

app = create_app(Workspace.open(Path(os.environ.get("MESHKIT_MESH", "."))))
