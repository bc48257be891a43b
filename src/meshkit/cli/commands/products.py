"""`meshkit products`, `meshkit show` and `meshkit query`: what is published, one product
in detail (spec, schema, versions, lineage, last run, quality), and SQL over products."""

from __future__ import annotations

import csv
import sys
from typing import Annotated, Any

import typer

from meshkit.cli import render
from meshkit.cli.commands import open_workspace
from meshkit.cli.options import JsonOption, MeshOption, ServerOption, TokenOption


def list_products(
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Text to find in id, description or tags.")
    ] = None,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """List data products with their owners and latest published version."""
    with open_workspace(mesh) as ws:
        rows = ws.list_products(domain=domain, search=search)
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        which = " ".join(
            part
            for part in (f"matching {search!r}" if search else "", f"in {domain}" if domain else "")
            if part
        )
        render.err.print(f"no data products {which}".rstrip())
        if search:
            render.err.print(
                "  hint: the search looks for the text in ids, descriptions and tags; "
                "try a shorter word, or `meshkit products` for all"
            )
        return
    render.records(
        rows,
        ["id", "version", "status", "owner", "published", "rows", "last_run", "description"],
        title="data products",
    )


def show(
    product: Annotated[str, typer.Argument(help="Product id, e.g. sales.orders.")],
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a product's spec, versions, last run and quality results."""
    with open_workspace(mesh) as ws:
        details = ws.show(product)
    spec = details.product.spec
    data: dict[str, Any] = {
        "id": details.product.id,
        "spec": details.product.spec_dict(),
        "table": str(details.table),
        "versions": [v.to_dict() for v in details.versions],
        "last_run": details.last_run.to_dict() if details.last_run else None,
        "quality": [q.to_dict() for q in details.quality],
        "lineage": [edge.to_dict() for edge in details.lineage],
        "columns": [c.to_dict() for c in details.columns],
    }
    if as_json:
        render.print_json(data)
        return
    render.kv_table(
        [
            ("id", details.product.id),
            ("version", spec.version),
            ("status", spec.status),
            ("description", spec.description),
            ("tags", ", ".join(spec.tags)),
            ("owner", f"{spec.owner.technical} (technical), {spec.owner.business} (business)"),
            ("classification", spec.classification),
            (
                "inputs",
                ", ".join(f"{p.name} <- {p.product or p.file or 'database'}" for p in spec.inputs),
            ),
            ("table", details.table),
            ("schedule", spec.schedule.cron if spec.schedule else "-"),
        ],
        title=details.product.id,
    )
    effective = {c.name: c for c in details.columns}
    render.records(
        [
            {
                "column": c.name,
                "type": c.type,
                "nullable": c.nullable and not c.primary_key,
                "key": "PK" if c.primary_key else ("unique" if c.unique else ""),
                "classification": effective[c.name].classification
                + (
                    f" (from {', '.join(effective[c.name].inherited_from)})"
                    if effective[c.name].inherited_from
                    else ""
                ),
                "pii": "PII" if effective[c.name].pii else "",
                "masking": effective[c.name].masking or "",
                "description": c.description,
            }
            for c in spec.schema_.columns
        ],
        [
            "column",
            "type",
            "nullable",
            "key",
            "classification",
            "pii",
            "masking",
            "description",
        ],
        title="schema (the contract): classification after lineage, masking for consumers",
    )
    render.records(
        data["versions"],
        ["delta_version", "semver", "row_count", "published_at", "run_id"],
        title="versions",
    )
    render.records(data["lineage"], ["target", "source_kind", "source"], title="lineage")
    if details.last_run is not None:
        render.records(
            [data["last_run"]],
            ["id", "status", "started_at", "finished_at", "row_count", "error"],
            title="last run",
        )
        render.records(
            data["quality"],
            ["check_name", "severity", "passed", "measured", "threshold", "message"],
            title="quality (last run)",
        )


def query(
    sql: Annotated[
        str, typer.Argument(help="One SELECT; products are tables named <domain>.<name>.")
    ],
    limit: Annotated[int | None, typer.Option(min=1, help="Return at most this many rows.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    server: ServerOption = None,
    token: TokenOption = None,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Query published data products with SQL (read-only), locally or on a server."""
    if server is not None:
        from meshkit.client import connect

        if not token:
            raise typer.BadParameter(
                "--server needs a token (or MESHKIT_TOKEN)", param_hint="--token"
            )
        with connect(server, token) as client:
            result = client.query(sql, max_rows=limit)
        table = result.table
        if result.truncated:
            render.err.print(
                f"showing the first {table.num_rows} rows: the server caps results "
                "(access.max_rows); aggregate, or narrow the query"
            )
    else:
        with open_workspace(mesh) as ws:
            table = ws.query(sql, limit=limit)
    if as_json:
        render.print_json(table.to_pylist())
    elif as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(row.values())
    else:
        render.arrow_table(table)
