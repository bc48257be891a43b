"""`meshkit validate` and `meshkit build`: check the specs, plan the build (`--select`
parsing) and run it with a progress display."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from meshkit.builder.runner import BuildResult
from meshkit.cli import render
from meshkit.cli.commands import open_workspace
from meshkit.cli.options import JsonOption, MeshOption
from meshkit.errors import PolicyError, SpecError
from meshkit.workspace import Workspace
from meshkit.workspace.builds import ENDED as _RUN_ENDED


def validate(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Check every spec (all problems at once) and each SQL transform against its schema."""
    try:
        with open_workspace(mesh) as ws:
            report = ws.validate()
    except (SpecError, PolicyError) as exc:
        if not as_json:
            raise
        render.print_json(
            {
                "ok": False,
                "problems": [p.to_dict() for p in exc.problems],
                "skipped": getattr(exc, "skipped", []),
            }
        )
        raise typer.Exit(exc.exit_code) from exc
    if as_json:
        render.print_json(
            {
                "ok": True,
                "domains": report.domains,
                "products": report.products,
                "notes": report.notes,
                "warnings": [w.to_dict() for w in report.warnings],
                "policies": [f.to_dict() for f in report.findings],
            }
        )
        return
    for warning in report.warnings:
        render.located(warning, label="warning", style="yellow")
    for note in report.notes:
        render.err.print(f"note: {note}", style="dim")
    render.policy_warnings(report.findings)
    render.out.print(
        f"[green]ok[/green]: {report.domains} domains, {report.products} products are valid"
    )


def _parse_select(select: list[str]) -> tuple[list[str], list[str], list[str]]:
    named, down, up = [], [], []
    for item in select:
        if item.startswith("+") and item.endswith("+"):
            up.append(item.strip("+"))
            down.append(item.strip("+"))
        elif item.endswith("+"):
            down.append(item[:-1])
        elif item.startswith("+"):
            up.append(item[1:])
        else:
            named.append(item)
    return named, down, up


def build(
    products: Annotated[
        list[str] | None, typer.Argument(help="Products to build (default: all).")
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            "-s",
            help="'PRODUCT+' adds everything downstream, '+PRODUCT' everything upstream.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Build even products whose spec, code and inputs are unchanged."
        ),
    ] = False,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build products in dependency order: stage, audit against the contract, then publish."""
    named, down, up = _parse_select(select or [])
    named = [*(products or []), *named]
    with open_workspace(mesh) as ws:
        ws.validate(policies=False)  # policies are evaluated per product by the build
        results = build_with_progress(ws, named, down, up, quiet=as_json, force=force)
    if as_json:
        render.print_json(
            {"ok": all(r.ok for r in results), "results": [r.to_dict() for r in results]}
        )
    else:
        render.build_results(results)
    failures = [r.error for r in results if r.error is not None]
    if failures:
        raise typer.Exit(max(e.exit_code for e in failures))


def build_with_progress(
    ws: Workspace,
    named: list[str],
    down: list[str],
    up: list[str],
    *,
    quiet: bool,
    force: bool = False,
) -> list[BuildResult]:
    results = _run_build(ws, named, down, up, quiet=quiet, force=force)
    if not quiet:
        render.policy_warnings(ws.last_findings)
    return results


def _run_build(
    ws: Workspace, named: list[str], down: list[str], up: list[str], *, quiet: bool, force: bool
) -> list[BuildResult]:
    order = ws.plan(named, downstream=down, upstream=up)
    live = not quiet and render.err.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=render.err,
        transient=True,
        disable=not live,
    ) as bar:
        task = bar.add_task("building", total=len(order))

        def progress(pid: str, message: str) -> None:
            bar.update(task, description=f"{pid}: {message}")
            if message in _RUN_ENDED:
                bar.advance(task)
            elif message.startswith("waiting for") and not live:
                render.err.print(f"{pid}: {message}")  # logs show why a build stands still

        return ws.build(named, downstream=down, upstream=up, progress=progress, force=force)
