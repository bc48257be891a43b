"""`meshkit access request|pending|approve|deny|revoke|grants`: the access workflow, taken
`--as` a named principal (checked against the specs exactly as the API checks a token's
principal), or sent to a meshkit server with `--server` and `--token`."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from meshkit.catalog.access import RequestRecord
from meshkit.cli import render
from meshkit.cli.options import JsonOption, MeshOption, ServerOption, TokenOption
from meshkit.workspace import Workspace

AsOption = Annotated[
    str, typer.Option("--as", help="Act as this principal (a domain member, e.g. an email).")
]


access_app = typer.Typer(
    help="Request, decide and revoke access to products.", no_args_is_help=True
)


REQUEST_COLUMNS = [
    "id",
    "product_id",
    "consumer",
    "status",
    "purpose",
    "columns",
    "ends_at",
    "decided_by",
]


@access_app.command("request")
def access_request(
    product: Annotated[str, typer.Argument(help="Product id, e.g. sales.orders.")],
    purpose: Annotated[str, typer.Option(help="What the data is for (10+ characters).")],
    until: Annotated[str, typer.Option(help="Last day of access, YYYY-MM-DD.")],
    who: Annotated[
        str | None,
        typer.Option(
            "--as", help="Ask as this principal (locally; with --server the token says who)."
        ),
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="Comma-separated columns (default: all).")
    ] = None,
    consumer: Annotated[
        str | None, typer.Option(help="product:<id> to request for a product.")
    ] = None,
    server: ServerOption = None,
    token: TokenOption = None,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask the owning domain for access to a product, here or on a meshkit server."""
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    end = _end_of(until)
    if server is not None:
        from meshkit.client import connect

        if not token:
            raise typer.BadParameter(
                "--server needs your API token (or MESHKIT_TOKEN)", param_hint="--token"
            )
        if who is not None:
            raise typer.BadParameter(
                "with --server, the token says who asks; leave out --as", param_hint="--as"
            )
        with connect(server, token) as client:
            row = client.request_access(
                product, purpose=purpose, until=end.date(), columns=wanted, consumer=consumer
            )
        render.listing([row], REQUEST_COLUMNS, "access request", as_json)
        return
    if who is None:
        raise typer.BadParameter(
            "say who asks: --as <principal> (or send it to a server with --server and --token)",
            param_hint="--as",
        )
    with Workspace.open(mesh) as ws:
        record = ws.access.request(
            ws.access.caller(who),
            product,
            purpose=purpose,
            until=end,
            columns=wanted,
            consumer=consumer,
        )
    render.listing([record.to_dict()], REQUEST_COLUMNS, "access request", as_json)


@access_app.command("pending")
def access_pending(who: AsOption, mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Requests waiting for you (as an owner of their domain), and your own."""
    with Workspace.open(mesh) as ws:
        rows = [r.to_dict() for r in ws.access.pending(ws.access.caller(who))]
    render.listing(rows, REQUEST_COLUMNS, "pending requests", as_json)


RequestArg = Annotated[str, typer.Argument(help="The request's id.")]


ReasonOption = Annotated[str | None, typer.Option(help="Why; kept with the decision.")]


@access_app.command("approve")
def access_approve(
    request_id: RequestArg, who: AsOption, reason: ReasonOption = None, mesh: MeshOption = None
) -> None:
    """Approve a pending request (owners of the product's domain only)."""
    record = _decide("approve", request_id, who, reason, mesh)
    render.out.print(
        f"approved {record.id}: {record.consumer} may read {record.product_id} "
        f"until {record.ends_at:%Y-%m-%d}"
    )


@access_app.command("deny")
def access_deny(
    request_id: RequestArg, who: AsOption, reason: ReasonOption = None, mesh: MeshOption = None
) -> None:
    """Deny a pending request."""
    record = _decide("deny", request_id, who, reason, mesh)
    render.out.print(f"denied {record.id} ({record.consumer} on {record.product_id})")


@access_app.command("revoke")
def access_revoke(
    request_id: RequestArg, who: AsOption, reason: ReasonOption = None, mesh: MeshOption = None
) -> None:
    """Revoke a grant at once."""
    record = _decide("revoke", request_id, who, reason, mesh)
    render.out.print(f"revoked {record.id} ({record.consumer} on {record.product_id})")


def _decide(
    action: str, request_id: str, who: str, reason: str | None, mesh: Path | None
) -> RequestRecord:
    with Workspace.open(mesh) as ws:
        decide = {"approve": ws.access.approve, "deny": ws.access.deny, "revoke": ws.access.revoke}
        return decide[action](ws.access.caller(who), request_id, reason)


@access_app.command("grants")
def access_grants(who: AsOption, mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Your grants in force."""
    with Workspace.open(mesh) as ws:
        rows = [r.to_dict() for r in ws.access.grants(ws.access.caller(who))]
    render.listing(rows, REQUEST_COLUMNS, "grants", as_json)


def _end_of(day: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(day), time.max, tzinfo=UTC)
    except ValueError as err:
        raise typer.BadParameter(
            f"{day!r} is not a date like 2027-03-31", param_hint="--until"
        ) from err
