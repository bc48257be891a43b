"""`meshkit vacuum` and `meshkit retention apply`: delete what is no longer kept, old
table files and rows past each product's retention period."""

from __future__ import annotations

from typing import Annotated

import typer

from meshkit.cli import render
from meshkit.cli.commands import open_workspace
from meshkit.cli.options import JsonOption, MeshOption
from meshkit.specs.models import parse_duration

retention_app = typer.Typer(help="Apply retention periods to published data.", no_args_is_help=True)


def vacuum(
    products: Annotated[list[str] | None, typer.Argument(help="Products (default: all).")] = None,
    retain: Annotated[
        str | None,
        typer.Option(
            help="Keep files younger than this, e.g. 7d (default: settings.vacuum_retention)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted.")
    ] = False,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete old table files and staged files of failed or killed builds."""
    keep = None
    if retain is not None:
        try:
            keep = parse_duration(retain)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--retain") from err
    with open_workspace(mesh) as ws:
        removed = ws.vacuum(products or [], retain=keep, dry_run=dry_run)
    if as_json:
        render.print_json({"dry_run": dry_run, "removed": removed})
        return
    verb = "would delete" if dry_run else "deleted"
    for pid, files in removed.items():
        render.out.print(f"{pid}: {verb} {len(files)} file(s)")
        for file in files:
            render.out.print(f"  {file}", style="dim")


@retention_app.command("apply")
def retention_apply(
    products: Annotated[
        list[str] | None, typer.Argument(help="Products (default: all with retention).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete rows past each product's retention period as a new version, then vacuum."""
    with open_workspace(mesh) as ws:
        results = ws.apply_retention(products or [], dry_run=dry_run)
    if as_json:
        render.print_json([r.to_dict() for r in results])
        return
    render.records(
        [r.to_dict() for r in results],
        ["product", "column", "cutoff", "rows_before", "rows_deleted", "version", "dry_run"],
        title="retention",
    )
