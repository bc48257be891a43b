"""Options every command group shares, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

MeshOption = Annotated[
    Path | None,
    typer.Option(
        "--mesh",
        "-m",
        help="Mesh folder (default: the nearest folder with mesh.yaml).",
        exists=True,  # `--mesh /nonexistent` says so, not "no mesh.yaml found"
        file_okay=False,
        dir_okay=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ServerOption = Annotated[
    str | None,
    typer.Option(envvar="MESHKIT_URL", help="A meshkit server to use, e.g. http://host:8080."),
]
TokenOption = Annotated[
    str | None, typer.Option(envvar="MESHKIT_TOKEN", help="Your API token for --server.")
]
