"""The OpenAPI document is the API's contract (schemathesis and the sweep are generated from
it): it changes only on purpose. On purpose, regenerate the golden file with
`MESHKIT_UPDATE_GOLDEN=1 pytest tests/api/test_openapi.py` and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

from meshkit.api import create_app
from meshkit.demo import copy_tree, example_mesh_path
from meshkit.workspace import Workspace

GOLDEN = Path(__file__).with_name("golden") / "openapi.json"


def test_the_openapi_document_is_the_golden_one(tmp_path: Path) -> None:
    root = tmp_path / "mesh"
    copy_tree(example_mesh_path(), root)
    with Workspace(root) as ws:
        document = create_app(ws).openapi()
    text = json.dumps(document, indent=1) + "\n"
    if os.environ.get("MESHKIT_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert json.loads(text) == json.loads(GOLDEN.read_text())
    # the same order too: paths and operations are listed as the routers include them
    assert text == GOLDEN.read_text()
