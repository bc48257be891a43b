"""`meshkit serve`, `meshkit token ...`, `meshkit access ...` and `meshkit audit ...`.

The local CLI acts for the operator: token commands are the platform's own (the operator can
read the catalog anyway), and access decisions are taken `--as` a named principal, checked
against the specs exactly as the API checks a token's principal.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from meshkit.access.identity import LOCAL
from meshkit.catalog.access import RequestRecord
from meshkit.cli import render
from meshkit.cli.options import JsonOption, MeshOption, ServerOption, TokenOption
from meshkit.specs.models import parse_duration
from meshkit.workspace import Workspace

AsOption = Annotated[
    str, typer.Option("--as", help="Act as this principal (a domain member, e.g. an email).")
]

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
access_app = typer.Typer(
    help="Request, decide and revoke access to products.", no_args_is_help=True
)
audit_app = typer.Typer(
    help="Verify and export the tamper-evident audit log.", no_args_is_help=True
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


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=256, help="Worker processes.")] = 1,
    max_queries: Annotated[
        int | None,
        typer.Option(
            min=1, max=10_000, help="Queries running at once, per worker. Default: the cores."
        ),
    ] = None,
    max_requests: Annotated[
        int, typer.Option(min=1, max=10_000, help="Requests in flight at once, per worker.")
    ] = 32,
    queue_timeout: Annotated[
        float,
        typer.Option(min=0, max=600, help="Seconds a request waits for a free slot, then 503."),
    ] = 1.0,
    shutdown_timeout: Annotated[
        int,
        typer.Option(min=0, max=600, help="Seconds running requests get to finish when stopping."),
    ] = 2,
    mesh: MeshOption = None,
) -> None:
    """Serve the API (OpenAPI at /docs) over this mesh."""
    import os

    import uvicorn

    from meshkit.api.limits import Limits

    with Workspace.open(mesh) as ws:
        ws.mesh  # noqa: B018 - invalid specs stop here, with their problems, not in the server
        root = ws.root
    limits = Limits(
        max_queries=max_queries or Limits.default().max_queries,
        max_requests=max_requests,
        queue_timeout=queue_timeout,
    )
    os.environ["MESHKIT_MESH"] = str(root)
    os.environ.update(limits.to_env())  # read by each worker process (meshkit.api.server)
    render.err.print(f"serving {root} on http://{host}:{port} (OpenAPI: /docs)")
    uvicorn.run(
        "meshkit.api.server:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        timeout_graceful_shutdown=shutdown_timeout,
    )


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
    _rows(
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
        _rows([row], REQUEST_COLUMNS, "access request", as_json)
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
    _rows([record.to_dict()], REQUEST_COLUMNS, "access request", as_json)


@access_app.command("pending")
def access_pending(who: AsOption, mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Requests waiting for you (as an owner of their domain), and your own."""
    with Workspace.open(mesh) as ws:
        rows = [r.to_dict() for r in ws.access.pending(ws.access.caller(who))]
    _rows(rows, REQUEST_COLUMNS, "pending requests", as_json)


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
    _rows(rows, REQUEST_COLUMNS, "grants", as_json)


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


def _end_of(day: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(day), time.max, tzinfo=UTC)
    except ValueError as err:
        raise typer.BadParameter(
            f"{day!r} is not a date like 2027-03-31", param_hint="--until"
        ) from err


def _rows(rows: list[dict[str, object]], columns: list[str], title: str, as_json: bool) -> None:
    if as_json:
        render.print_json(rows)
    else:
        render.records(rows, columns, title=title)
