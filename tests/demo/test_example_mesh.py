"""The example mesh and the init template: they load cleanly, and every product's SQL returns
exactly the declared schema and passes its quality checks on the generated TPC-H data.

The products are run here with plain DuckDB (inputs registered under their port names), so the
example stays honest independently of the build engine.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from meshkit.demo import copy_tree, example_mesh_path, mesh_template_path
from meshkit.demo.tpch import generate
from meshkit.errors import MeshkitError
from meshkit.specs import Mesh, Product, load_mesh
from meshkit.specs.checks import (
    AcceptedValuesCheck,
    FreshnessCheck,
    NullFractionCheck,
    PatternCheck,
    RangeCheck,
    RowCountCheck,
    SqlCheck,
    UniqueCheck,
)
from meshkit.specs.models import Lifecycle, Severity, normalize_type
from meshkit.specs.validate import infer_format
from meshkit.specs.yamlpos import read_yaml


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    return con.execute(sql, params or []).fetchall()[0][0]


def read_port(mesh: Mesh, product: Product, port_index: int, outputs: dict[str, pa.Table]) -> Any:
    """An input port as the transform sees it: a file, a product's output or a database table."""
    port = product.spec.inputs[port_index]
    if port.product is not None:
        return outputs[port.product]
    if port.file is not None:
        fmt = port.format or infer_format(port.file)
        reader = {"parquet": "read_parquet", "csv": "read_csv"}[str(fmt)]
        with duckdb.connect() as con:
            path = str(mesh.root / port.file)
            return con.sql(f"SELECT * FROM {reader}(?)", params=[path]).to_arrow_table()
    assert port.database is not None
    assert port.database.url.startswith("sqlite:///")
    database = mesh.root / port.database.url.removeprefix("sqlite:///")
    assert port.database.table is not None
    con = sqlite3.connect(database)
    try:
        cursor = con.execute(f"SELECT * FROM {ident(port.database.table)}")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        con.close()
    # Raw SQLite values (booleans as 0/1, timestamps as text): the transform casts them.
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})


def order(mesh: Mesh) -> list[Product]:
    done: list[str] = []
    while len(done) < len(mesh.products):
        for product_id, product in sorted(mesh.products.items()):
            if product_id not in done and all(u in done for u in product.upstream()):
                done.append(product_id)
    return [mesh.products[p] for p in done]


def failed_checks(product: Product, data: pa.Table) -> list[str]:
    """The quality checks and column constraints the data does not pass."""
    failures: list[str] = []
    with duckdb.connect() as con:
        con.register("this", data)
        rows = scalar(con, "SELECT count(*) FROM this")
        for column in product.spec.schema_.columns:
            name = ident(column.name)
            if not column.nullable and scalar(
                con, f"SELECT count(*) FROM this WHERE {name} IS NULL"
            ):
                failures.append(f"{column.name} has NULLs")
            if column.unique and scalar(con, f"SELECT count(DISTINCT {name}) FROM this") != rows:
                failures.append(f"{column.name} is not unique")
        key = ", ".join(ident(c) for c in product.spec.schema_.primary_key)
        if key and scalar(con, f"SELECT count(DISTINCT ({key})) FROM this") != rows:
            failures.append("primary key is not unique")
        for check in product.spec.quality:
            column = ident(getattr(check, "column", "") or "x")
            if isinstance(check, RowCountCheck):
                ok = (check.min is None or rows >= check.min) and (
                    check.max is None or rows <= check.max
                )
            elif isinstance(check, NullFractionCheck):
                nulls = scalar(con, f"SELECT count(*) FROM this WHERE {column} IS NULL")
                ok = rows > 0 and nulls / rows <= check.max
            elif isinstance(check, UniqueCheck):
                cols = ", ".join(ident(c) for c in check.columns)
                ok = scalar(con, f"SELECT count(DISTINCT ({cols})) FROM this") == rows
            elif isinstance(check, AcceptedValuesCheck):
                values = ", ".join(literal(v) for v in check.values)
                ok = not scalar(con, f"SELECT count(*) FROM this WHERE {column} NOT IN ({values})")
            elif isinstance(check, RangeCheck):
                bad = [f"{column} < {literal(check.min)}"] if check.min is not None else []
                bad += [f"{column} > {literal(check.max)}"] if check.max is not None else []
                ok = not scalar(con, f"SELECT count(*) FROM this WHERE {' OR '.join(bad)}")
            elif isinstance(check, PatternCheck):
                query = f"SELECT count(*) FROM this WHERE NOT regexp_full_match({column}, ?)"
                ok = not scalar(con, query, [check.pattern])
            elif isinstance(check, FreshnessCheck):
                newest = scalar(con, f"SELECT max({column}) FROM this")
                now = datetime.now(UTC).replace(tzinfo=None)
                ok = newest is not None and now - newest <= check.max_age
            else:
                assert isinstance(check, SqlCheck)
                failing = scalar(con, f"SELECT count(*) FROM ({check.query})")
                ok = failing <= check.max_failures
            if not ok:
                failures.append(check.label())
    return failures


def run_mesh(mesh: Mesh) -> tuple[dict[str, pa.Table], dict[str, list[str]]]:
    """Run every product in dependency order: its outputs and what each failed."""
    outputs: dict[str, pa.Table] = {}
    failures: dict[str, list[str]] = {}
    for product in order(mesh):
        with duckdb.connect() as con:
            for i, port in enumerate(product.spec.inputs):
                con.register(port.name, read_port(mesh, product, i, outputs))
            sql = product.transform_text or ""
            described = con.execute(f"DESCRIBE {sql}").fetchall()
            declared = [(c.name, c.type) for c in product.spec.schema_.columns]
            assert [(row[0], normalize_type(row[1])) for row in described] == declared, product.id
            outputs[product.id] = con.sql(sql).to_arrow_table()
        failures[product.id] = failed_checks(product, outputs[product.id])
    return outputs, failures


def test_the_example_mesh_loads_without_problems(example_mesh: Path) -> None:
    mesh = load_mesh(example_mesh)
    assert mesh.spec.name == "tpch-mesh"
    assert sorted(mesh.products) == [
        "analytics.customer_revenue",
        "customer.contacts",
        "customer.customers",
        "marketing.campaign_audience",
        "sales.order_lines",
        "sales.orders",
        "supply.parts",
        "supply.supplier_performance",
        "supply.suppliers",
    ]
    assert {d.spec.type.value for d in mesh.domains.values()} == {
        "source-aligned",
        "aggregate",
        "consumer-aligned",
    }


def test_the_shipped_example_loads_without_its_data() -> None:
    """The specs do not need the data to load; only building does."""
    assert not (example_mesh_path() / "data").exists()
    assert len(load_mesh(example_mesh_path()).products) == 9


def test_the_example_mesh_shows_every_feature(example_mesh: Path) -> None:
    mesh = load_mesh(example_mesh)
    products = list(mesh.products.values())
    check_types = {c.type for p in products for c in p.spec.quality}
    assert check_types == {
        "row_count",
        "null_fraction",
        "unique",
        "accepted_values",
        "range",
        "pattern",
        "freshness",
        "sql",
    }
    assert {p.spec.status for p in products} == {Lifecycle.ACTIVE, Lifecycle.DRAFT}
    assert any(c.severity == Severity.WARNING for p in products for c in p.spec.quality)
    assert {port.kind for p in products for port in p.spec.inputs} == {
        "file",
        "product",
        "database",
    }
    for product in products:
        spec = product.spec
        assert spec.slo is not None, product.id
        assert spec.schedule is not None, product.id
        assert spec.owner.steward, product.id
        assert spec.owner.on_call, product.id
        assert spec.owner.escalation, product.id
        assert spec.tags, product.id
        assert all(c.description for c in spec.schema_.columns), product.id
        assert spec.schema_.primary_key, product.id
    for fact in ("sales.orders", "sales.order_lines"):
        assert mesh.products[fact].spec.retention is not None
    assert mesh.products["customer.customers"].pii_columns() == {
        "customer_name",
        "address",
        "phone",
    }
    assert mesh.products["customer.contacts"].pii_columns() == {"email", "phone_e164"}
    assert mesh.products["supply.suppliers"].pii_columns() == {"phone"}


def test_every_product_returns_its_schema_and_passes_its_checks(example_mesh: Path) -> None:
    outputs, failures = run_mesh(load_mesh(example_mesh))
    assert failures == {product: [] for product in failures}
    assert outputs["sales.order_lines"].num_rows == max(t.num_rows for t in outputs.values())


def test_removing_p_from_the_order_statuses_fails_the_gate(example_mesh: Path) -> None:
    """The check README.md tells users to break: accepted_values on sales.orders.order_status."""
    product = load_mesh(example_mesh).products["sales.orders"]
    raw = read_yaml(product.file)
    checks = [c for c in raw["quality"] if c.get("column") == "order_status"]
    assert [list(c["values"]) for c in checks] == [["F", "O", "P"]]
    assert checks[0]["severity"] == "error"
    broken = product.spec.model_copy(
        update={
            "quality": [
                c.model_copy(update={"values": ["F", "O"]})
                if isinstance(c, AcceptedValuesCheck) and c.column == "order_status"
                else c
                for c in product.spec.quality
            ]
        }
    )
    with duckdb.connect() as con:
        orders = str(example_mesh / "data" / "tpch" / "orders.parquet")
        con.register(
            "orders", con.sql("SELECT * FROM read_parquet(?)", params=[orders]).to_arrow_table()
        )
        data = con.sql(product.transform_text or "").to_arrow_table()
    assert failed_checks(product, data) == []
    product.spec = broken
    assert failed_checks(product, data) == ["accepted_values:order_status"]


@pytest.mark.slow
def test_the_checks_also_pass_at_scale_0_1(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("tpch-mesh-sf01")
    copy_tree(example_mesh_path(), root)
    generate(root / "data", scale=0.1)
    _, failures = run_mesh(load_mesh(root))
    assert failures == {product: [] for product in failures}


def test_the_checks_pass_at_the_smallest_scale_the_cli_accepts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """`meshkit demo --scale 0.001` publishes every product: no row_count minimum is set
    above what that scale generates (150 customers, 10 suppliers)."""
    root = tmp_path_factory.mktemp("tpch-mesh-sf0001")
    copy_tree(example_mesh_path(), root)
    generate(root / "data", scale=0.001)
    _, failures = run_mesh(load_mesh(root))
    assert failures == {product: [] for product in failures}


def test_the_template_loads_and_passes_its_checks(tmp_path: Path) -> None:
    copy_tree(mesh_template_path(), tmp_path)
    mesh = load_mesh(tmp_path)
    assert sorted(mesh.products) == ["shop.orders"]
    outputs, failures = run_mesh(mesh)
    assert failures == {"shop.orders": []}
    assert outputs["shop.orders"].num_rows == 20


def test_copy_tree_never_overwrites_a_mesh(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "mesh.yaml").write_text("\n")  # empty: nothing to lose
    copy_tree(mesh_template_path(), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "data" / "example.csv").is_file()
    with pytest.raises(MeshkitError, match="already holds a mesh") as caught:
        copy_tree(example_mesh_path(), tmp_path)
    assert caught.value.hint
    assert "tpch-mesh" not in (tmp_path / "mesh.yaml").read_text()


def test_copy_tree_needs_a_mesh_to_copy(tmp_path: Path) -> None:
    with pytest.raises(MeshkitError, match="not a mesh folder"):
        copy_tree(tmp_path / "nothing", tmp_path / "dest")
