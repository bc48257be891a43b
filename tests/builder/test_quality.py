"""The quality gate: every check type, its measured value, threshold and PII-free samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from meshkit.builder import quality
from meshkit.engines.duckdb import DuckDBSession
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec

ORDERS_SQL = """
copy (
  select
    i::bigint as id,
    'Customer#' || lpad((i % 900)::varchar, 9, '0') as customer_name,
    lpad((10 + i % 20)::varchar, 2, '0') || '-555-' || lpad((i % 1000)::varchar, 3, '0') || '-' || lpad((i % 10000)::varchar, 4, '0') as phone,
    ['F', 'O', 'P'][1 + i % 3] as status,
    round(10 + (i * 7919) % 50000 / 100.0, 2)::decimal(15,2) as amount,
    date '1995-01-01' + (i % 1000)::int as order_date,
    case when i % 50 = 0 then null else 'note ' || i end as comment
  from range(20000) t(i)
) to '{path}' (format parquet)
"""

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # the clock of the gate runs below (freshness)

COLUMNS = [
    {"name": "id", "type": "bigint", "primary_key": True},
    {"name": "customer_name", "type": "varchar", "pii": True},
    {"name": "phone", "type": "varchar", "pii": True},
    {"name": "status", "type": "varchar", "nullable": False},
    {"name": "amount", "type": "decimal(15,2)"},
    {"name": "order_date", "type": "date"},
    {"name": "comment", "type": "varchar"},
]


def orders_mesh(make_mesh: MakeMesh, checks: list[dict[str, Any]], **overrides: Any) -> Path:
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders", schema={"columns": COLUMNS}, quality=checks, **overrides
                )
            }
        }
    )
    (root / "data").mkdir(exist_ok=True)
    duckdb.execute(ORDERS_SQL.format(path=root / "data" / "orders.parquet"))
    return root


FAILING = [
    ({"type": "row_count", "min": 25000}, 20000, "[25000, -]"),
    ({"type": "row_count", "max": 100}, 20000, "[-, 100]"),
    ({"type": "null_fraction", "column": "comment", "max": 0.01}, 0.02, 0.01),
    ({"type": "unique", "columns": ["customer_name"]}, 20000 - 900, 0),
    ({"type": "unique", "columns": ["status", "order_date"]}, 20000 - 3000, 0),
    ({"type": "accepted_values", "column": "status", "values": ["F", "O"]}, 6666, ["F", "O"]),
    ({"type": "range", "column": "amount", "min": 10, "max": 400}, None, "[10, 400]"),
    ({"type": "range", "column": "order_date", "max": "1997-01-01"}, None, "[-, 1997-01-01]"),
    ({"type": "pattern", "column": "phone", "pattern": r"^1\d-555-\d{3}-\d{4}$"}, 10000, None),
    (
        {"type": "sql", "name": "big_orders", "query": "select * from this where amount > 490"},
        None,
        0,
    ),
]


@pytest.mark.parametrize(
    ("check", "measured", "threshold"),
    FAILING,
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else "",
)
def test_failing_check_reports_measure_threshold_and_safe_samples(
    make_mesh: MakeMesh, check: dict[str, Any], measured: Any, threshold: Any
) -> None:
    root = orders_mesh(make_mesh, [check])
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.status == "blocked"
        assert type(result.error).__name__ == "QualityGateError"
        failed = [c for c in result.checks if not c.passed]
        assert [c.type for c in failed] == [check["type"]]
        outcome = failed[0]
        if measured is not None:
            assert outcome.measured == measured
        else:
            assert outcome.measured > 0
        if threshold is not None:
            assert outcome.threshold == threshold
        assert outcome.message
        if check["type"] != "row_count":
            assert outcome.samples, "failing rows are sampled"
            for row in outcome.samples:
                assert "customer_name" not in row
                assert "phone" not in row
                assert not any("Customer#" in str(v) for v in row.values())
        assert ws.snapshot("sales.orders") is None, "nothing was published"
        runs = ws.catalog.runs.recent("sales.orders")
        assert runs[0].status == "blocked"
        stored = {q.check_name: q for q in ws.catalog.runs.quality(runs[0].id)}
        assert stored[outcome.name].passed is False
        assert stored[outcome.name].samples == outcome.samples


def test_all_checks_pass_on_good_data(make_mesh: MakeMesh) -> None:
    checks = [
        {"type": "row_count", "min": 1000, "max": 1_000_000},
        {"type": "null_fraction", "column": "comment", "max": 0.05},
        {"type": "unique", "columns": ["id"]},
        {"type": "accepted_values", "column": "status", "values": ["F", "O", "P"]},
        {"type": "range", "column": "amount", "min": 0, "max": 1000},
        {"type": "range", "column": "order_date", "min": "1995-01-01", "max": "1998-12-31"},
        {"type": "pattern", "column": "phone", "pattern": r"^\d{2}-555-\d{3}-\d{4}$"},
        {"type": "sql", "name": "no_negative", "query": "select * from this where amount < 0"},
    ]
    root = orders_mesh(make_mesh, checks)
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        assert all(c.passed for c in result.checks)
        # the contract's own checks come first: not null (PK + status), primary key
        names = [c.name for c in result.checks]
        assert names[:3] == [
            "contract:not_null:id",
            "contract:not_null:status",
            "contract:primary_key:id",
        ]


def test_warning_is_recorded_and_published(make_mesh: MakeMesh) -> None:
    check = {"type": "null_fraction", "column": "comment", "max": 0.0, "severity": "warning"}
    root = orders_mesh(make_mesh, [check])
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok
        warning = next(c for c in result.checks if c.type == "null_fraction")
        assert not warning.passed
        assert warning.severity == "warning"
        assert ws.snapshot("sales.orders") is not None
        run = ws.catalog.runs.last("sales.orders")
        assert run is not None
        assert run.status == "success"
        assert any(not q.passed for q in ws.catalog.runs.quality(run.id))


@pytest.mark.parametrize(
    ("column", "change", "kind"),
    [
        ("status", {"nullable": False}, "not_null"),
        ("customer_name", {"unique": True}, "unique"),
    ],
)
def test_contract_constraints_gate_publication(
    make_mesh: MakeMesh, column: str, change: dict[str, Any], kind: str
) -> None:
    columns = [dict(c, **change) if c["name"] == column else c for c in COLUMNS]
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec(
                    "orders",
                    schema={"columns": columns},
                    transform={
                        "query": "select * replace (case when id % 7 = 0 then null else status end as status) from raw"
                    },
                )
            }
        }
    )
    (root / "data").mkdir()
    duckdb.execute(ORDERS_SQL.format(path=root / "data" / "orders.parquet"))
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert result.status == "blocked"
    failed = [c for c in result.checks if not c.passed]
    assert failed[0].type == kind
    assert failed[0].name == f"contract:{kind}:{column}"


def test_duplicate_primary_key_is_caught_with_samples(make_mesh: MakeMesh) -> None:
    root = orders_mesh(
        make_mesh, [], transform={"query": "select * replace (id % 19000 as id) from raw"}
    )
    with Workspace(root) as ws:
        (result,) = ws.build()
    pk = next(c for c in result.checks if c.name == "contract:primary_key:id")
    assert not pk.passed
    assert pk.measured == 1000
    assert pk.samples
    assert all(row["id"] < 1000 for row in pk.samples)


def test_freshness_uses_the_clock(make_mesh: MakeMesh, monkeypatch: pytest.MonkeyPatch) -> None:
    check = {"type": "freshness", "column": "order_date", "max_age": "30d"}
    root = orders_mesh(make_mesh, [check])
    newest = datetime(1997, 9, 26, tzinfo=UTC)  # 1995-01-01 + 999 days
    with Workspace(root) as ws:  # the Workspace's clock is the one checks judge by
        monkeypatch.setattr(Workspace, "now", lambda self: newest + timedelta(days=10))
        (fresh,) = ws.build()
        assert fresh.ok, fresh.error
        monkeypatch.setattr(Workspace, "now", lambda self: newest + timedelta(days=31))
        (stale,) = ws.build(force=True)  # the clock is not an input: nothing else changed
    assert stale.status == "blocked"
    check_result = next(c for c in stale.checks if c.type == "freshness")
    assert check_result.measured == newest.isoformat()
    assert check_result.threshold == "30d"
    assert "31d old" in check_result.message


class CountingSession(DuckDBSession):
    """A real DuckDB session that counts the queries the gate sends."""

    def __init__(self) -> None:
        super().__init__(duckdb.connect())
        self.queries: list[str] = []

    def fetch(self, query: exp.Expr, params: Any = ()) -> pa.Table:
        self.queries.append(query.sql(dialect="duckdb"))
        return super().fetch(query, params)


def test_builtin_checks_scan_the_data_once(make_mesh: MakeMesh) -> None:
    checks = [
        {"type": "row_count", "min": 1},
        {"type": "null_fraction", "column": "comment", "max": 0.5},
        {"type": "unique", "columns": ["id"]},
        {"type": "accepted_values", "column": "status", "values": ["F", "O", "P"]},
        {"type": "range", "column": "amount", "min": 0},
        {"type": "pattern", "column": "status", "pattern": "[FOP]"},
        {"type": "freshness", "column": "order_date", "max_age": "100000d"},
    ]
    root = orders_mesh(make_mesh, checks)
    with Workspace(root) as ws:
        product = ws.mesh.products["sales.orders"]
        session = CountingSession()
        from meshkit.engines.base import Source

        session.register(
            Source(
                name=quality.STAGED, reader="parquet", paths=[str(root / "data" / "orders.parquet")]
            )
        )
        rows, results = quality.run_checks(product, session, now=NOW)
        session.close()
    assert rows == 20000
    assert len(results) == 2 + 1 + len(checks)  # not_null x2, primary key, declared checks
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    assert len(session.queries) == 1, session.queries


def staged_session(root: Path) -> tuple[CountingSession, list[str]]:
    from meshkit.engines.base import Source

    files = [str(root / "data" / "orders.parquet")]
    session = CountingSession()
    for name in (quality.STAGED, quality.THIS):
        session.register(Source(name=name, reader="parquet", paths=files))
    return session, files


def test_footer_statistics_answer_checks_without_a_scan(make_mesh: MakeMesh) -> None:
    checks = [
        {"type": "row_count", "min": 1000},
        {"type": "null_fraction", "column": "comment", "max": 0.05},
        {"type": "range", "column": "amount", "min": 0, "max": 1000},
        {"type": "range", "column": "order_date", "min": "1995-01-01", "max": "1998-12-31"},
        {"type": "freshness", "column": "order_date", "max_age": "100000d"},
    ]
    root = orders_mesh(make_mesh, checks)
    root_spec = root / "domains/sales/products/orders/dataproduct.yaml"
    # no primary key: uniqueness is the one thing footers cannot prove
    root_spec.write_text(root_spec.read_text().replace("primary_key: true", "primary_key: false"))
    with Workspace(root) as ws:
        product = ws.mesh.products["sales.orders"]
        session, files = staged_session(root)
        rows, results = quality.run_checks(product, session, files=files, now=NOW)
        session.close()
    assert rows == 20000
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    nulls = next(r for r in results if r.type == "null_fraction")
    assert nulls.measured == 0.02
    assert session.queries == [], "every check was answered from the Parquet footers"


def test_stats_that_cannot_prove_a_range_fall_back_to_an_exact_count(make_mesh: MakeMesh) -> None:
    root = orders_mesh(make_mesh, [{"type": "range", "column": "amount", "max": 400}])
    with Workspace(root) as ws:
        session, files = staged_session(root)
        _, results = quality.run_checks(
            ws.mesh.products["sales.orders"], session, files=files, now=NOW
        )
        session.close()
    failed = next(r for r in results if r.type == "range")
    (expected,) = duckdb.sql(f"select count(*) from '{files[0]}' where amount > 400").fetchall()
    assert failed.measured == expected[0] > 0
    assert len(session.queries) == 2  # the one scan, then sample rows of the failed range


def test_plain_custom_checks_join_the_single_scan(make_mesh: MakeMesh) -> None:
    checks = [
        {"type": "accepted_values", "column": "status", "values": ["F", "O", "P"]},
        {"type": "sql", "name": "negative", "query": "select * from this where amount < 0"},
        {
            "type": "sql",
            "name": "late",
            "query": "select id from this t where t.order_date > date '2030-01-01'",
        },
        {
            "type": "sql",
            "name": "per_day",
            "query": "select order_date from this group by 1 having count(*) > 1000",
        },
    ]
    root = orders_mesh(make_mesh, checks)
    with Workspace(root) as ws:
        session, files = staged_session(root)
        _, results = quality.run_checks(
            ws.mesh.products["sales.orders"], session, files=files, now=NOW
        )
        session.close()
    assert all(r.passed for r in results)
    assert len(session.queries) == 1
    # the grouped check could not be a filter: it is a subquery of that one statement
    assert "HAVING" in session.queries[0]


def test_custom_check_samples_never_show_renamed_or_computed_pii(make_mesh: MakeMesh) -> None:
    query = "select id, phone as status, upper(customer_name) as who, amount from this where amount > 490 group by all"
    root = orders_mesh(make_mesh, [{"type": "sql", "name": "sneaky", "query": query}])
    with Workspace(root) as ws:
        (result,) = ws.build()
    sneaky = next(c for c in result.checks if c.name == "sneaky")
    assert not sneaky.passed
    assert sneaky.samples
    for row in sneaky.samples:
        assert set(row) == {"id", "amount"}


def test_composite_key_duplicates_are_counted_exactly(make_mesh: MakeMesh) -> None:
    root = orders_mesh(make_mesh, [{"type": "unique", "columns": ["status", "customer_name"]}])
    with Workspace(root) as ws:
        session, files = staged_session(root)
        _, results = quality.run_checks(
            ws.mesh.products["sales.orders"], session, files=files, now=NOW
        )
        session.close()
    unique = next(r for r in results if r.type == "unique" and r.name.startswith("unique"))
    (expected,) = duckdb.sql(
        f"select count(*) - count(distinct (status, customer_name)) from '{files[0]}'"
    ).fetchall()
    assert unique.measured == expected[0]
    assert any("COUNT(DISTINCT (" in q for q in session.queries), "failure confirmed exactly"


@pytest.mark.parametrize("duplicated", [False, True])
def test_composite_key_with_nulls_counts_only_complete_keys(
    make_mesh: MakeMesh, duplicated: bool
) -> None:
    """SQL semantics: a key with a NULL part equals nothing, so it is never a duplicate."""
    extra = (
        "union all select * replace (4 as id) from raw where id = 1" if duplicated else ""
    )  # (O, 4) twice
    query = f"select * replace (case when id % 10 = 0 then null else status end as status) from raw {extra}"
    root = orders_mesh(
        make_mesh,
        [{"type": "unique", "columns": ["status", "id"]}],
        transform={"query": query},
    )
    spec = root / "domains/sales/products/orders/dataproduct.yaml"
    spec.write_text(
        spec.read_text()
        .replace("primary_key: true", "primary_key: false")
        .replace("nullable: false", "nullable: true")
    )
    with Workspace(root) as ws:
        (result,) = ws.build()
    unique = next(c for c in result.checks if c.type == "unique")
    assert unique.measured == (1 if duplicated else 0), unique.message
    assert unique.passed is not duplicated


@pytest.mark.parametrize(
    ("key_sql", "bitmap"),
    [
        ("(i // 3)::bigint as a, (i % 3)::integer as b", True),  # dense: (a, b) packs into a bitmap
        ("(i // 3 * 1000000007)::bigint as a, (i % 3)::integer as b", False),  # sparse: hashed
    ],
)
def test_integer_keys_use_a_bitmap_when_dense(tmp_path: Path, key_sql: str, bitmap: bool) -> None:
    from meshkit.engines.base import Source
    from meshkit.specs.mesh import Product
    from meshkit.specs.product import DataProductSpec

    data = tmp_path / "keys.parquet"
    # 30000 keys, 20 repeated once more, and 50 with a NULL part (never duplicates)
    duckdb.execute(
        f"copy (select {key_sql} from range(30000) t(i) "
        f"union all select {key_sql} from range(20) t(i) "
        f"union all select null::bigint as a, 1::integer as b from range(50)) "
        f"to '{data}' (format parquet)"
    )
    spec = DataProductSpec.model_validate(
        product_spec(
            "keys",
            schema={"columns": [{"name": "a", "type": "bigint"}, {"name": "b", "type": "integer"}]},
            quality=[{"type": "unique", "columns": ["a", "b"]}],
        )
    )
    product = Product(file=tmp_path / "dataproduct.yaml", raw=None, spec=spec, domain="d")  # type: ignore[arg-type]
    session = CountingSession()
    session.register(Source(name=quality.STAGED, reader="parquet", paths=[str(data)]))
    _, (result,) = quality.run_checks(product, session, files=[str(data)], now=NOW)
    session.close()
    assert result.measured == 20
    assert not result.passed
    assert ("BITSTRING_AGG" in session.queries[0].upper()) is bitmap
    assert result.samples, "duplicated keys are sampled"
