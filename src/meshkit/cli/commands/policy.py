"""`meshkit policy check` and `meshkit policy report`: evaluate the governance policies
(table, JSON, JUnit or SARIF) and summarise the stored results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from meshkit import __version__
from meshkit.cli import render
from meshkit.cli.commands import open_workspace
from meshkit.cli.options import JsonOption, MeshOption
from meshkit.errors import PolicyError

policy_app = typer.Typer(help="Evaluate and report governance policies.", no_args_is_help=True)


@policy_app.command("check")
def policy_check(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: all).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, junit or sarif.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here.")
    ] = None,
    mesh: MeshOption = None,
) -> None:
    """Evaluate every applicable policy; exit 7 if a required one fails."""
    from meshkit.governance.reports import to_json, to_junit, to_sarif

    if fmt not in ("table", "json", "junit", "sarif"):
        raise typer.BadParameter(
            f"unknown format {fmt!r}; use table, json, junit or sarif", param_hint="--format"
        )
    with open_workspace(mesh) as ws:
        findings = ws.evaluate_policies(products or [])
        root, when = ws.root, ws.now()
        files = {pid: p.file for pid, p in ws.mesh.products.items()}
    if fmt == "table":
        if output is not None:
            raise typer.BadParameter(
                "--output needs --format json, junit or sarif", param_hint="--output"
            )
        render.policy_table(findings)
        text = None
    elif fmt == "json":
        text = json.dumps(to_json(findings, generated_at=when), indent=2)
    elif fmt == "junit":
        text = to_junit(findings, generated_at=when, root=root, product_files=files)
    else:
        sarif = to_sarif(findings, tool_version=__version__, root=root, product_files=files)
        text = json.dumps(sarif, indent=2)
    if text is not None:
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text + "\n")
            render.err.print(f"wrote {output}")
        else:
            sys.stdout.write(text + "\n")
    blocking = [f for f in findings if f.blocking]
    if blocking:
        raise typer.Exit(PolicyError.exit_code)


@policy_app.command("report")
def policy_report(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Summarise stored policy results: compliance per domain and per rule."""
    with open_workspace(mesh) as ws:
        summary = ws.policy_report()
    if as_json:
        render.print_json(summary)
        return
    render.records(
        summary["domains"],
        ["domain", "products", "checks", "passed", "failed", "waived", "compliance"],
        title="compliance per domain",
    )
    render.records(
        summary["policies"],
        ["policy", "rule", "enforcement", "checks", "passed", "failed", "waived", "compliance"],
        title="compliance per policy",
    )
