"""The `meshkit` command. Each command parses its flags, calls one Workspace method, and renders.

Exit codes (also in docs/cli.md):
  0 success · 1 error · 2 invalid specs or usage · 3 input/build error · 4 contract or quality
  gate failed (nothing published) · 5 conflict with a concurrent build · 6 catalog unavailable ·
  7 a required policy fails · 8 not authenticated · 9 access denied or query refused ·
  70 internal error (a bug: please report it) · 130 interrupted
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from meshkit import __version__
from meshkit.builder.runner import BuildResult
from meshkit.cli import access_cmds, render
from meshkit.cli.options import JsonOption, MeshOption, ServerOption, TokenOption
from meshkit.errors import MeshkitError, PolicyError, SpecError
from meshkit.specs.models import parse_duration
from meshkit.workspace import Workspace
from meshkit.workspace.builds import ENDED as _RUN_ENDED

app = typer.Typer(
    name="meshkit",
    help="Self-serve data mesh: declare data products as code, build them behind their contracts, "
    "publish them as Delta tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Typer prints a type column for every option, so flags read `--json <bool>`, which suggests
# `--json true` (refused). A flag takes no value: show none.
_display_type = typer.core.TyperOption.display_type_rich


def _flag_shows_no_type(self: typer.core.TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


typer.core.TyperOption.display_type_rich = _flag_shows_no_type  # type: ignore[method-assign]


def _print_version(value: bool) -> None:
    if value:
        render.out.print(f"meshkit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Self-serve data mesh: declare data products as code, build them behind their contracts,
    publish them as Delta tables, and serve them with access control."""


EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _workspace(mesh: Path | None) -> Workspace:
    return Workspace.open(mesh)


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to create the mesh in.")] = Path("."),
) -> None:
    """Scaffold a mesh: one domain and product, global policies and an access section."""
    from meshkit.demo import init_mesh

    name = init_mesh(path)
    render.out.print(f"created the mesh '{name}' in {path.resolve()}")
    render.out.print(
        "it has one domain (shop), one product (shop.orders, reading data/example.csv), three "
        "global policies (pii-masking, ownership, quality-slo) and an access section"
    )
    where = "" if path.resolve() == Path.cwd().resolve() else f"cd {shlex.quote(str(path))}, then "
    render.out.print(f"next: {where}`meshkit validate`, `meshkit build` and `meshkit products`")


@app.command()
def validate(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Check every spec (all problems at once) and each SQL transform against its schema."""
    try:
        with _workspace(mesh) as ws:
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


@app.command()
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
    with _workspace(mesh) as ws:
        ws.validate(policies=False)  # policies are evaluated per product by the build
        results = _build_with_progress(ws, named, down, up, quiet=as_json, force=force)
    if as_json:
        render.print_json(
            {"ok": all(r.ok for r in results), "results": [r.to_dict() for r in results]}
        )
    else:
        render.build_results(results)
    failures = [r.error for r in results if r.error is not None]
    if failures:
        raise typer.Exit(max(e.exit_code for e in failures))


def _build_with_progress(
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


@app.command("products")
def list_products(
    domain: Annotated[str | None, typer.Option(help="Only this domain.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Text to find in id, description or tags.")
    ] = None,
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """List data products with their owners and latest published version."""
    with _workspace(mesh) as ws:
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


@app.command()
def show(
    product: Annotated[str, typer.Argument(help="Product id, e.g. sales.orders.")],
    mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a product's spec, versions, last run and quality results."""
    with _workspace(mesh) as ws:
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


@app.command()
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
        with _workspace(mesh) as ws:
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


@app.command()
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
    with _workspace(mesh) as ws:
        removed = ws.vacuum(products or [], retain=keep, dry_run=dry_run)
    if as_json:
        render.print_json({"dry_run": dry_run, "removed": removed})
        return
    verb = "would delete" if dry_run else "deleted"
    for pid, files in removed.items():
        render.out.print(f"{pid}: {verb} {len(files)} file(s)")
        for file in files:
            render.out.print(f"  {file}", style="dim")


@app.command()
def schema(
    kind: Annotated[
        str | None, typer.Argument(help="Mesh, Domain or DataProduct (default: all three).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write <kind>.schema.json files here.")
    ] = None,
) -> None:
    """Print the JSON Schema of the spec files (for editor autocompletion)."""
    from meshkit.specs.jsonschema import json_schemas

    schemas = json_schemas(kind)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for name, body in schemas.items():
            (output / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n")
            render.out.print(f"wrote {output / f'{name}.schema.json'}")
        return
    render.print_json(schemas if kind is None else next(iter(schemas.values())))


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to put the demo mesh.")] = Path(
        "demo-mesh"
    ),
    scale: Annotated[float, typer.Option(min=0.001, max=100, help="TPC-H scale factor.")] = 0.1,
    as_json: JsonOption = False,
) -> None:
    """Generate TPC-H data, build the whole example mesh, and show what was published."""
    from meshkit.demo import copy_tree, example_mesh_path
    from meshkit.demo.tour import OWNER, access_tour
    from meshkit.demo.tpch import generate

    if not (directory / "mesh.yaml").is_file():
        copy_tree(example_mesh_path(), directory)
    say = render.err.print if as_json else render.out.print
    say(f"mesh: {directory.resolve()}")
    with render.err.status(f"generating TPC-H data at scale factor {scale}"):
        generate(directory / "data", scale=scale, progress=lambda msg: None)
    say(f"data: TPC-H scale factor {scale} in {(directory / 'data').resolve()}")
    with _workspace(directory) as ws:
        ws.validate()
        results = _build_with_progress(ws, [], [], [], quiet=as_json)
        if as_json:
            render.print_json(
                {"ok": all(r.ok for r in results), "results": [r.to_dict() for r in results]}
            )
        else:
            render.build_results(results)
            render.policy_summary(ws.last_findings)
            render.records(
                ws.list_products(),
                ["id", "version", "owner", "published", "rows", "last_run"],
                title="the catalog",
            )
            sample = "select order_status, count(*) as orders, sum(total_price) as revenue from sales.orders group by all order by 1"
            say(f"$ meshkit query {sample!r}")
            render.arrow_table(ws.query(sample))
            tour = access_tour(ws)
            say(
                f"access: {tour.request.consumer} asked for {tour.request.product_id} "
                f"({tour.request.purpose!r}); {tour.request.decided_by} approved it"
            )
            render.arrow_table(tour.as_owner, title=f"as {OWNER} (owner)")
            render.arrow_table(
                tour.as_consumer,
                title=f"as {tour.request.consumer}: {', '.join(tour.masked)} masked, "
                "only the consumer's region",
            )
            say(
                f"audit log: {tour.audit.entries} entries, "
                f"{'intact' if tour.audit.ok else 'TAMPERED: ' + str(tour.audit.problem)}"
            )
            say(
                "next: cd into the mesh and try `meshkit show sales.orders`, or make a check fail: "
                "remove P from the accepted values of order_status in "
                "domains/sales/products/orders/dataproduct.yaml and run `meshkit build sales.orders`; "
                "or serve it: `meshkit token create lena.schmidt@example.com` and `meshkit serve` "
                "(docs/api.md)"
            )
    failures = [r.error for r in results if r.error is not None]
    if failures:
        raise typer.Exit(max(e.exit_code for e in failures))


app.command()(access_cmds.serve)
app.add_typer(access_cmds.token_app, name="token")
app.add_typer(access_cmds.access_app, name="access")
app.add_typer(access_cmds.audit_app, name="audit")
policy_app = typer.Typer(help="Evaluate and report governance policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
retention_app = typer.Typer(help="Apply retention periods to published data.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


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
    with _workspace(mesh) as ws:
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
    with _workspace(mesh) as ws:
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
    with _workspace(mesh) as ws:
        results = ws.apply_retention(products or [], dry_run=dry_run)
    if as_json:
        render.print_json([r.to_dict() for r in results])
        return
    render.records(
        [r.to_dict() for r in results],
        ["product", "column", "cutoff", "rows_before", "rows_deleted", "version", "dry_run"],
        title="retention",
    )


def main() -> None:
    """Entry point: every MeshkitError becomes a message and an exit code, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except MeshkitError as exc:
        render.error(exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        render.err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: bad flag, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            render.err.print(f"error: {exc}")
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except Exception:
        if os.environ.get("MESHKIT_DEBUG"):
            traceback.print_exc()
        render.err.print(
            "[bold red]internal error[/bold red]: meshkit hit a bug. Rerun with MESHKIT_DEBUG=1 "
            "for the traceback and report it."
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(code if isinstance(code, int) else 0)
