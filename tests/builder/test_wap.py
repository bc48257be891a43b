"""Write-audit-publish end to end: versions, gating, contract checks before writing, lineage."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy
from deltalake import DeltaTable

from meshkit.errors import AccessDenied, ContractError, InputError, MeshkitError, NotFoundError
from meshkit.tables.local import local_path
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec

ID_AMOUNT = [
    {"name": "id", "type": "bigint", "primary_key": True},
    {"name": "amount", "type": "double"},
]


def write_orders(root: Path, rows: int, *, offset: int = 0) -> None:
    (root / "data").mkdir(exist_ok=True)
    duckdb.execute(
        f"copy (select (i + {offset})::bigint as id, (i * 1.5)::double as amount from range({rows}) t(i)) "
        f"to '{root / 'data' / 'orders.parquet'}' (format parquet)"
    )


def two_products(make_mesh: MakeMesh, **orders: Any) -> Path:
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec("orders", schema={"columns": ID_AMOUNT}, **orders),
                "totals": product_spec(
                    "totals",
                    inputs=[{"name": "orders", "product": "sales.orders"}],
                    transform={
                        "query": "select count(*) as orders, sum(amount) as total from orders"
                    },
                    schema={
                        "columns": [
                            {"name": "orders", "type": "bigint"},
                            {"name": "total", "type": "double"},
                        ]
                    },
                ),
            }
        }
    )
    write_orders(root, 1000)
    return root


def test_each_build_is_a_new_version_and_old_ones_stay_readable(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        first = ws.build()
        assert [r.status for r in first] == ["published", "published"]
        write_orders(root, 1500)
        second = ws.build()
        assert [r.delta_version for r in second] == [1, 1]
        table = local_path(ws.table_of("sales.orders"))
        assert DeltaTable(str(table), version=0).count() == 1000
        assert DeltaTable(str(table)).count() == 1500
        assert ws.query("select orders from sales.totals").to_pylist() == [{"orders": 1500}]
        versions = ws.catalog.versions.of("sales.orders")
        assert [(v.delta_version, v.row_count) for v in versions] == [(1, 1500), (0, 1000)]
        history = DeltaTable(str(table)).history()
        assert history[0]["meshkit.product"] == "sales.orders"
        assert history[0]["meshkit.run_id"] == second[0].run_id


def test_failed_gate_keeps_previous_version_and_skips_downstream(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh, quality=[{"type": "row_count", "max": 1200}])
    with Workspace(root) as ws:
        assert all(r.ok for r in ws.build())
        write_orders(root, 2000)
        orders, totals = ws.build()
        assert orders.status == "blocked"
        assert totals.status == "skipped"
        assert "sales.orders failed" in totals.error.message  # type: ignore[union-attr]
        table = local_path(ws.table_of("sales.orders"))
        assert DeltaTable(str(table)).version() == 0
        assert DeltaTable(str(table)).count() == 1000
        assert ws.query("select count(*) as n from sales.orders").to_pylist() == [{"n": 1000}]
        # the staged files of the failed build are gone
        assert [p.name for p in (table / "data").iterdir()] == [
            ws.catalog.versions.of("sales.orders")[0].run_id
        ]


def test_contract_mismatch_is_found_before_writing(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh, transform={"query": "select id::integer as id, amount from raw"})
    with Workspace(root) as ws:
        result = ws.build(["sales.orders"])[0]
        assert isinstance(result.error, ContractError)
        assert "'id' is INT" in result.error.violations[0].message
        assert "CAST(id AS BIGINT)" in (result.error.violations[0].hint or "")
        assert result.timings.get("audit") is None, "no data was staged or audited"
        table = local_path(ws.table_of("sales.orders"))
        assert not (table / "data").exists() or not any((table / "data").iterdir())
        assert ws.snapshot("sales.orders") is None


def test_validate_checks_sql_against_schema_without_data(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    spec = root / "domains/sales/products/totals/dataproduct.yaml"
    spec.write_text(
        spec.read_text().replace("sum(amount) as total", "sum(amount) as total, 1 as extra")
    )
    with Workspace(root) as ws:
        from meshkit.errors import SpecError

        with pytest.raises(SpecError) as info:
            ws.validate()
    (problem,) = info.value.problems
    assert "outputs column 'extra'" in problem.message
    assert problem.file == spec.resolve()
    assert problem.line is not None


def test_lineage_and_runs_are_recorded(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        ws.build()
        edges = {(e.target, e.source_kind, e.source) for e in ws.catalog.lineage.edges()}
        assert ("sales.orders", "file", "data/orders.parquet") in edges
        assert ("sales.totals", "product", "sales.orders") in edges
        run = ws.catalog.runs.last("sales.totals")
        assert run is not None
        assert run.status == "success"
        assert set(run.timings) == {"ingest", "transform", "audit", "publish"}
        details = ws.show("sales.totals")
        assert details.versions[0].row_count == 1


def test_select_downstream_and_upstream(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        assert ws.plan(downstream=["sales.orders"]) == ["sales.orders", "sales.totals"]
        assert ws.plan(upstream=["sales.totals"]) == ["sales.orders", "sales.totals"]
        assert ws.plan(["sales.totals"]) == ["sales.totals"]
        with pytest.raises(NotFoundError, match=r"did you mean 'sales\.orders'"):
            ws.plan(["sales.ordrs"])
        (only,) = ws.build(["sales.totals"])
        assert isinstance(only.error, InputError)
        assert "never been published" in only.error.message


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "relation"])
def test_python_transform(make_mesh: MakeMesh, kind: str) -> None:
    bodies = {
        "pandas": "df = raw.df()\n    df['amount'] = df['amount'] * 2\n    return df",
        "polars": "import polars as pl\n    return raw.pl().with_columns(pl.col('amount') * 2)",
        "arrow": "import pyarrow.compute as pc\n    t = raw.to_arrow_table()\n    return t.set_column(1, 'amount', pc.multiply(t['amount'], 2))",
        "relation": "return raw.project('id, amount * 2 as amount')",
    }
    code = f"def build(raw):\n    {bodies[kind]}\n"
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders",
                    schema={"columns": ID_AMOUNT},
                    transform={"python": "transform.py:build"},
                )
            }
        },
        files={"domains/sales/products/orders/transform.py": code},
    )
    write_orders(root, 100)
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        assert ws.query("select sum(amount) as s from sales.orders").to_pylist() == [
            {"s": 2 * 1.5 * sum(range(100))}
        ]


def test_python_transform_errors_are_reported(make_mesh: MakeMesh) -> None:
    code = "def build(raw):\n    return {'not': 'a table'}\n\ndef boom(raw):\n    raise ValueError('bad input')\n"
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders",
                    schema={"columns": ID_AMOUNT},
                    transform={"python": "transform.py:build"},
                )
            }
        },
        files={"domains/sales/products/orders/transform.py": code},
    )
    write_orders(root, 10)
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert "returned builtins.dict" in str(result.error)
    spec = root / "domains/sales/products/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("transform.py:build", "transform.py:boom"))
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert "raised ValueError: bad input" in str(result.error)


def test_python_output_is_held_to_the_contract(make_mesh: MakeMesh) -> None:
    code = "def build(raw):\n    return raw.project('id::varchar as id, amount')\n"
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders", schema={"columns": ID_AMOUNT}, transform={"python": "t.py:build"}
                )
            }
        },
        files={"domains/sales/products/orders/t.py": code},
    )
    write_orders(root, 10)
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert isinstance(result.error, ContractError)


# ------------------------------------------------------------------------------ inputs


def test_file_formats_and_globs(make_mesh: MakeMesh) -> None:
    columns = [{"name": "id", "type": "bigint"}, {"name": "name", "type": "varchar"}]
    union = " union all ".join(f"select id, name from {p}" for p in ("pq", "csv", "js", "nd"))
    root = make_mesh(
        {
            "sales": {
                "mixed": product_spec(
                    "mixed",
                    inputs=[
                        {"name": "pq", "file": "data/parts/*.parquet"},
                        {
                            "name": "csv",
                            "file": "data/people.txt",
                            "format": "csv",
                            "options": {"delim": "|", "header": True},
                        },
                        {"name": "js", "file": "data/people.json"},
                        {"name": "nd", "file": "data/people.ndjson"},
                    ],
                    transform={"query": union},
                    schema={"columns": columns},
                    quality=[{"type": "row_count", "min": 8, "max": 8}],
                )
            }
        }
    )
    data = root / "data"
    (data / "parts").mkdir(parents=True)
    for part in (0, 1):
        duckdb.execute(
            f"copy (select {part}::bigint as id, 'p{part}' as name) to '{data / 'parts' / f'{part}.parquet'}' (format parquet)"
        )
    (data / "people.txt").write_text("id|name\n2|Ana\n3|Raj\n")
    (data / "people.json").write_text(
        json.dumps([{"id": 4, "name": "Li"}, {"id": 5, "name": "Bo"}])
    )
    (data / "people.ndjson").write_text('{"id": 6, "name": "Jo"}\n{"id": 7, "name": "Al"}\n')
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        ids = ws.query("select id from sales.mixed order by id").column("id").to_pylist()
    assert ids == list(range(8))


def test_missing_input_file_is_a_clear_error(make_mesh: MakeMesh) -> None:
    root = make_mesh({"sales": {"orders": product_spec("orders", schema={"columns": ID_AMOUNT})}})
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert isinstance(result.error, InputError)
    assert "matches no file" in result.error.message


def test_sqlite_table_input(make_mesh: MakeMesh) -> None:
    root = make_mesh(
        {
            "customer": {
                "contacts": product_spec(
                    "contacts",
                    inputs=[
                        {
                            "name": "crm",
                            "database": {"url": "sqlite:///data/crm.db", "table": "contacts"},
                        }
                    ],
                    transform={"query": "select id, email from crm where active"},
                    schema={
                        "columns": [
                            {"name": "id", "type": "bigint"},
                            {"name": "email", "type": "varchar", "pii": True},
                        ]
                    },
                )
            }
        }
    )
    (root / "data").mkdir()
    with sqlite3.connect(root / "data" / "crm.db") as con:
        con.execute("create table contacts (id integer primary key, email text, active boolean)")
        con.executemany(
            "insert into contacts values (?, ?, ?)",
            [(i, f"c{i}@example.com", i % 2) for i in range(500)],
        )
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        assert result.rows == 250
        edges = [(e.source_kind, e.source) for e in ws.catalog.lineage.edges("customer.contacts")]
    assert edges == [("database", "sqlite:///data/crm.db/contacts")]


@pytest.mark.postgres
def test_postgres_table_input(make_mesh: MakeMesh, postgres_url: str, pg_table_name: str) -> None:
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as con:
        con.execute(
            sqlalchemy.text(
                f"create table {pg_table_name} (id bigint primary key, amount numeric(15,2), placed timestamptz)"
            )
        )
        con.execute(
            sqlalchemy.text(
                f"insert into {pg_table_name} select i, i * 1.25, now() - i * interval '1 hour' from generate_series(1, 2000) i"
            )
        )
    try:
        root = make_mesh(
            {
                "sales": {
                    "payments": product_spec(
                        "payments",
                        inputs=[
                            {
                                "name": "pg",
                                "database": {"url": postgres_url, "table": pg_table_name},
                            }
                        ],
                        transform={"query": "select id, amount, placed from pg"},
                        schema={
                            "columns": [
                                {"name": "id", "type": "bigint", "primary_key": True},
                                {"name": "amount", "type": "decimal(15,2)"},
                                {"name": "placed", "type": "timestamptz"},
                            ]
                        },
                        quality=[{"type": "freshness", "column": "placed", "max_age": "1d"}],
                    )
                }
            }
        )
        with Workspace(root) as ws:
            (result,) = ws.build()
            assert result.ok, result.error
            total = ws.query(
                "select sum(amount) as s, count(*) as n from sales.payments"
            ).to_pylist()[0]
        assert total["n"] == 2000
        assert float(total["s"]) == pytest.approx(1.25 * 2000 * 2001 / 2)
    finally:
        with engine.begin() as con:
            con.execute(sqlalchemy.text(f"drop table {pg_table_name}"))
        engine.dispose()


def test_vacuum_removes_orphaned_staged_files_only_when_old(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        ws.build(["sales.orders"])
        table = local_path(ws.table_of("sales.orders"))
        # what a build killed before its commit leaves behind
        orphan = table / "data" / "killedrun"
        orphan.mkdir()
        duckdb.execute(f"copy (select 1 as x) to '{orphan / 'data_0.parquet'}' (format parquet)")
        fresh = table / "data" / "runningbuild"
        fresh.mkdir()
        duckdb.execute(f"copy (select 2 as x) to '{fresh / 'data_0.parquet'}' (format parquet)")
        eight_days_ago = time.time() - 8 * 86400
        os.utime(orphan / "data_0.parquet", (eight_days_ago, eight_days_ago))

        preview = ws.vacuum(["sales.orders"], dry_run=True)
        assert preview == {"sales.orders": ["data/killedrun/data_0.parquet"]}
        assert (orphan / "data_0.parquet").exists()
        ws.vacuum(["sales.orders"])
        assert not orphan.exists()
        assert (fresh / "data_0.parquet").exists(), (
            "younger than the retention: maybe a running build"
        )
        assert DeltaTable(str(table)).count() == 1000
        with pytest.raises(MeshkitError, match="refusing to vacuum"):
            ws.vacuum(retain=timedelta(minutes=5))


def test_commit_records_the_upstream_versions_read(make_mesh: MakeMesh) -> None:
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        ws.build()
        ws.build(["sales.orders"], force=True)
        ws.build(["sales.totals"])
        history = DeltaTable(str(ws.table_of("sales.totals"))).history()
    assert json.loads(history[0]["meshkit.inputs"]) == {"sales.orders": 1}
    assert json.loads(history[1]["meshkit.inputs"]) == {"sales.orders": 0}


def test_a_new_catalog_learns_published_versions_from_the_tables(make_mesh: MakeMesh) -> None:
    """A replaced or restored catalog is rebuilt from the Delta history, not an error."""
    import shutil

    root = two_products(make_mesh)
    with Workspace(root) as ws:
        (first, _) = ws.build()
    shutil.rmtree(root / ".meshkit")
    with Workspace(root) as ws:
        details = ws.show("sales.orders")
        assert [(v.delta_version, v.run_id, v.row_count) for v in details.versions] == [
            (0, first.run_id, 1000)
        ]
        imported = ws.catalog.runs.recent("sales.orders")[0]
        assert imported.status == "success"
        assert "table's history" in (imported.error or "")
        (again, _) = ws.build(force=True)
        assert again.ok
        assert [v.delta_version for v in ws.catalog.versions.of("sales.orders")] == [1, 0]


@pytest.mark.parametrize("python", [False, True])
def test_build_leaves_out_rows_past_retention(
    make_mesh: MakeMesh, monkeypatch: pytest.MonkeyPatch, python: bool
) -> None:
    """A rebuild must not bring back rows that retention removed; NULL dates are kept."""
    from datetime import UTC, datetime

    columns = [{"name": "id", "type": "bigint"}, {"name": "placed_on", "type": "date"}]
    sql = "select id, placed_on from raw"
    transform = {"python": "t.py:build"} if python else {"query": sql}
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders",
                    schema={"columns": columns},
                    transform=transform,
                    retention={"period": "365d", "column": "placed_on"},
                )
            }
        },
        files={
            "domains/sales/products/orders/t.py": f"def build(raw):\n    return raw.query('raw', {sql!r})\n"
        },
    )
    (root / "data").mkdir()
    duckdb.execute(
        "copy (select i::bigint as id, case when i % 100 = 0 then null else date '2020-01-01' + i::int end as placed_on "
        f"from range(1000) t(i)) to '{root / 'data' / 'orders.parquet'}' (format parquet)"
    )
    monkeypatch.setattr(Workspace, "now", lambda self: datetime(2021, 6, 1, tzinfo=UTC))
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        (kept,) = ws.query(
            "select count(*) as n, min(placed_on) as first from sales.orders"
        ).to_pylist()
    (expected,) = duckdb.sql(
        f"select count(*) from '{root / 'data' / 'orders.parquet'}' "
        "where placed_on is null or placed_on >= date '2020-06-01'"
    ).fetchall()
    assert kept["n"] == expected[0]
    assert str(kept["first"]) == "2020-06-01"


def test_transforms_and_queries_read_only_declared_inputs(make_mesh: MakeMesh) -> None:
    """A table function would bypass input ports, lineage and PII rules: refused (fail-closed)."""
    from meshkit.errors import SpecError

    root = two_products(
        make_mesh, transform={"query": "select id, amount from read_parquet('data/orders.parquet')"}
    )
    with pytest.raises(SpecError, match="a transform reads only its input ports"):
        Workspace(root).mesh  # noqa: B018 - loading is the check
    root = two_products(make_mesh)
    with Workspace(root) as ws:
        ws.build()
        for sql in (
            "select content from read_text('/etc/hostname')",
            "select * from 'data/orders.parquet'",
            "select * from sales.orders where id in (select id from read_csv('data/x.csv'))",
        ):
            with pytest.raises(AccessDenied, match=r"not allowed in queries|not a data product"):
                ws.query(sql)


def test_a_transform_failing_at_run_time_fails_its_product_only(make_mesh: MakeMesh) -> None:
    """A conversion error inside DuckDB is a build failure (exit 3), not an internal error."""
    from meshkit.errors import BuildError

    root = two_products(make_mesh)
    spec = root / "domains/sales/products/totals/dataproduct.yaml"
    spec.write_text(
        spec.read_text().replace("count(*) as orders", "cast('x' || count(*) as bigint) as orders")
    )
    with Workspace(root) as ws:
        orders, totals = ws.build()
    assert orders.ok
    assert totals.status == "failed"
    assert isinstance(totals.error, BuildError)
    assert totals.error.exit_code == 3
    assert "failed while running" in totals.error.message


def test_retention_apply_keeps_the_published_status(
    make_mesh: MakeMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording a retention version must not record unpublished spec changes (e.g. status)."""
    from datetime import UTC, datetime

    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders",
                    schema={
                        "columns": [
                            {"name": "id", "type": "bigint"},
                            {"name": "placed_on", "type": "date"},
                        ]
                    },
                    transform={"query": "select id, placed_on from raw"},
                    retention={"period": "365d", "column": "placed_on"},
                )
            }
        }
    )
    (root / "data").mkdir()
    duckdb.execute(
        "copy (select i::bigint as id, date '2020-01-01' + i::int as placed_on from range(1000) t(i)) "
        f"to '{root / 'data' / 'orders.parquet'}' (format parquet)"
    )
    monkeypatch.setattr(Workspace, "now", lambda self: datetime(2021, 1, 1, tzinfo=UTC))
    with Workspace(root) as ws:
        assert ws.build()[0].ok
    spec = root / "domains/sales/products/orders/dataproduct.yaml"
    spec.write_text(
        spec.read_text().replace("status: active", "status: draft").replace("1.0.0", "2.0.0")
    )
    monkeypatch.setattr(Workspace, "now", lambda self: datetime(2022, 1, 1, tzinfo=UTC))
    with Workspace(root) as ws:
        (result,) = ws.apply_retention(["sales.orders"])
        assert result.rows_deleted > 0
        assert ws.catalog.products.get("sales.orders").status == "active"
        newest = ws.catalog.versions.of("sales.orders")[0]
        assert newest.delta_version == result.version
        assert newest.semver == "1.0.0"


def test_a_staged_file_vanishing_before_commit_publishes_nothing(make_mesh: MakeMesh) -> None:
    """Publish exactly what was audited: a subset (e.g. after a concurrent vacuum) never."""
    from meshkit.errors import BuildError

    root = two_products(make_mesh)
    write_orders(root, 200_000)

    def vacuum_strikes(pid: str, message: str) -> None:
        if message == "publishing":
            staged = sorted((root / "warehouse/sales/orders/data").glob("*/*.parquet"))
            staged[0].unlink()

    with Workspace(root) as ws:
        (result,) = ws.build(["sales.orders"], progress=vacuum_strikes)
        assert isinstance(result.error, BuildError)
        assert "disappeared" in result.error.message
        assert ws.snapshot("sales.orders") is None
