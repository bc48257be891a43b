"""The CLI's commands, one module per area: `build` (validate, build), `products` (products,
show, query), `policy`, `retention` (vacuum, retention), `scaffold` (init, schema, demo),
`serve`, `tokens`, `access` and `audit`. Each command parses its flags, calls one Workspace
method, and renders; `meshkit.cli.app` registers them on the one Typer app.

A new command goes into the module of its area (or a new module), is a function whose
docstring is its help, and is registered in `cli/app.py` where it should appear in
`meshkit --help`; a new group is a `typer.Typer` of its module, added there with
`app.add_typer`.
"""

from __future__ import annotations

from pathlib import Path

from meshkit.workspace import Workspace


def open_workspace(mesh: Path | None) -> Workspace:
    """The Workspace of `--mesh`, else of the nearest folder with mesh.yaml."""
    return Workspace.open(mesh)
