"""`meshkit init`, `meshkit schema` and `meshkit demo`: start a mesh, the JSON Schema of the
spec files, and the example mesh built and toured. They call `meshkit.demo` and
`meshkit.specs.jsonschema` directly (they need no mesh, or create one first)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated

import typer

from meshkit.cli import render
from meshkit.cli.commands import open_workspace
from meshkit.cli.commands.build import build_with_progress
from meshkit.cli.options import JsonOption


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
    with open_workspace(directory) as ws:
        ws.validate()
        results = build_with_progress(ws, [], [], [], quiet=as_json)
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
