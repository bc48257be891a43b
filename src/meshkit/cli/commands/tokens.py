"""`meshkit token create|list|revoke`: API tokens, made by the local operator (who can
read the catalog anyway)."""

from __future__ import annotations

from typing import Annotated

import typer

from meshkit.access.identity import LOCAL
from meshkit.cli import render
from meshkit.cli.options import JsonOption, MeshOption
from meshkit.specs.models import parse_duration
from meshkit.workspace import Workspace

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    principal: Annotated[str, typer.Argument(help="Who the token acts for.")],
    expires: Annotated[str, typer.Option(help="Lifetime, e.g. 30d or 12h.")] = "30d",
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token. It is printed once and stored only as a hash."""
    try:
        ttl = parse_duration(expires)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--expires") from err
    with Workspace.open(mesh) as ws:
        record, token = ws.access.create_token(
            principal, ttl=ttl, description=description, by=LOCAL
        )
    if as_json:
        render.print_json({**record.to_dict(), "token": token})
        return
    render.err.print(
        f"token {record.id} for {principal}, expires {record.expires_at:%Y-%m-%d %H:%M} UTC; "
        "it is shown this once:"
    )
    print(token)


@token_app.command("list")
def token_list(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """List tokens (never their secrets)."""
    with Workspace.open(mesh) as ws:
        rows = [t.to_dict() for t in ws.access.list_tokens(LOCAL)]
    render.listing(
        rows,
        ["id", "principal", "description", "created_at", "expires_at", "revoked_at"],
        "tokens",
        as_json,
    )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.")], mesh: MeshOption = None
) -> None:
    """Revoke a token at once."""
    with Workspace.open(mesh) as ws:
        record = ws.access.revoke_token(token_id, by=LOCAL)
    render.out.print(f"revoked token {record.id} of {record.principal}")
