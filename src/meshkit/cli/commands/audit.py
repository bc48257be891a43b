"""`meshkit audit verify|key|export`: check the tamper-evident audit log (against a copy of
the public key and of the head file, when given), print the public key, export the log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from meshkit.cli import render
from meshkit.cli.options import JsonOption, MeshOption
from meshkit.workspace import Workspace

audit_app = typer.Typer(
    help="Verify and export the tamper-evident audit log.", no_args_is_help=True
)


@audit_app.command("verify")
def audit_verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Verify against this copy of the public key (PEM), not the key file's.",
        ),
    ] = None,
    witness: Annotated[
        Path | None,
        typer.Option(
            "--witness",
            help="Compare the log with this copy of the head file (one you shipped elsewhere), "
            "not the one settings.audit.head_file names.",
        ),
    ] = None,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the hash chain and signatures, and the log against the head file kept outside
    the catalog; name the first bad entry (exit 1 if any)."""
    pem = None
    if public_key is not None:
        try:
            pem = public_key.read_bytes()
        except OSError as err:
            raise typer.BadParameter(
                f"cannot read {public_key}: {err.strerror}", param_hint="--public-key"
            ) from err
    if witness is not None and not witness.is_file():
        raise typer.BadParameter(f"{witness} is not a file", param_hint="--witness")
    with Workspace.open(mesh) as ws:
        result = ws.verify_audit(pem, head_file=witness)
    if as_json:
        render.print_json(dict(result.__dict__))
    elif result.ok:
        if result.witnessed is not None:
            against = f"; matches the head file {result.head_file} (entry {result.witnessed})"
        else:
            against = (
                f"; checked without a witness: there is no head file {result.head_file}"
                if result.head_file
                else ""
            )
        render.out.print(
            f"audit log intact: {result.entries} entries, {result.checkpoints} signed "
            f"checkpoints{against}"
        )
    else:
        render.err.print(f"[bold red]audit log tampered[/bold red]: {result.problem}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("key")
def audit_key(mesh: MeshOption = None) -> None:
    """Print the platform's audit public key (PEM): keep a copy where the catalog's writers
    cannot change it, and verify with --public-key."""
    with Workspace.open(mesh) as ws:
        sys.stdout.write(ws.audit_public_key().decode())


@audit_app.command("export")
def audit_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    after: Annotated[int, typer.Option(min=0, help="Only entries after this sequence number.")] = 0,
    mesh: MeshOption = None,
) -> None:
    """Write the audit log as JSON lines (hashes included, so others can re-verify it)."""
    with Workspace.open(mesh) as ws:
        if output is None:
            count = ws.audit.export(sys.stdout, after_seq=after)
        else:
            with output.open("w", encoding="utf-8") as stream:
                count = ws.audit.export(stream, after_seq=after)
    render.err.print(f"exported {count} entries")
