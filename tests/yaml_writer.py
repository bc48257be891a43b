"""Write spec dicts as YAML files (tests build meshes from Python data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
