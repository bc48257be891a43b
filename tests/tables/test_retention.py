"""Retention on real Delta tables: expired rows go in one new version, time travel keeps them
until vacuum's window passes, the history says why, and reruns and dry runs change nothing."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from meshkit.errors import ConflictError, MeshkitError, NotFoundError
from meshkit.tables.delta import DeltaTables, list_files, staged_schema
from meshkit.tables.local import local_path
from meshkit.tables.retention import (
    OPERATION,
    RetentionResult,
    _delete_expired,
    _vacuum,
    apply_retention,
    expired_predicate,
    expired_rows,
    for_delta,
    quote_identifier,
)

PRODUCT = "sales.orders"
NOW = datetime(2020, 3, 15, 10, 30, 0, 250000, tzinfo=UTC)
PERIOD = timedelta(days=3 * 365)
CUTOFF = NOW - PERIOD  # 2017-03-16 10:30:00.25 UTC
DATE_CUTOFF = datetime(2017, 3, 16, tzinfo=UTC)  # DATE columns expire whole days
CUTOFF_LITERALS = {  # the same cutoffs in DuckDB syntax, to compute the expected counts
    "order_date": "date '2017-03-16'",
    "ordered_at": "timestamp '2017-03-16 10:30:00.25'",
    "ordered_at_tz": "timestamptz '2017-03-16 10:30:00.25+00'",
}

# 10,000 orders spread over five years (2015-2019) with microsecond-precise times, every 97th
# without a date, plus two orders either side of the cutoff instant (exactly at it: kept).
ORDERS_SQL = """
select
    i::bigint as order_id,
    case when i % 97 = 0 then null else date '2015-01-01' + (i * 1826 // 10000)::int end
        as order_date,
    case when i % 97 = 0 then null
        else timestamp '2015-01-01' + to_microseconds(i * 15776640000 + i % 1000) end
        as ordered_at,
    case when i % 97 = 0 then null
        else timestamptz '2015-01-01 00:00:00+00' + to_microseconds(i * 15776640000 + i % 1000) end
        as ordered_at_tz,
    round(5 + (i * 37) % 500 + 0.99, 2)::double as amount
from range(10000) t(i)
union all
select 10000, date '2017-03-16', timestamp '2017-03-16 10:30:00.25',
    timestamptz '2017-03-16 10:30:00.25+00', 1.0
union all
select 10001, date '2017-03-15', timestamp '2017-03-16 10:30:00.249999',
    timestamptz '2017-03-16 10:30:00.249999+00', 2.0
"""
TOTAL = 10002


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    return con


def expected_expired(column: str) -> int:
    sql = f"select count(*) from ({ORDERS_SQL}) where {column} < {CUTOFF_LITERALS[column]}"
    row = duck().execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def publish(tables: DeltaTables, table: Path, run_id: str, sql: str = ORDERS_SQL) -> int:
    """Stage Parquet with DuckDB and commit it as the table's next version, like a build does."""
    snapshot = tables.snapshot(table)
    stage = tables.stage_dir(table, run_id)
    duck().execute(f"copy ({sql}) to '{stage / 'part-0.parquet'}' (format parquet)")
    return tables.commit(
        table,
        stage,
        schema=staged_schema(stage),
        read_version=snapshot.version if snapshot is not None else None,
        metadata={"meshkit.run_id": run_id, "meshkit.product": PRODUCT},
        name="orders",
        description="Orders.",
    )


def read(
    tables: DeltaTables, table: Path, query: str, version: int | None = None
) -> list[tuple[Any, ...]]:
    """Run `query` over the table's version (as `orders`) with DuckDB, straight from its files."""
    snapshot = tables.snapshot(table, version)
    assert snapshot is not None
    con = duck()
    files = list_files(snapshot.files)
    con.execute(f"create view orders as select * from read_parquet({files!r})")
    return con.execute(query).fetchall()


def count(tables: DeltaTables, table: Path, version: int | None = None) -> int:
    return int(read(tables, table, "select count(*) from orders", version)[0][0])


def apply(
    tables: DeltaTables,
    table: Path,
    *,
    column: str = "order_date",
    vacuum_hours: int = 1,
    dry_run: bool = False,
) -> RetentionResult:
    return apply_retention(
        tables,
        table,
        product_id=PRODUCT,
        period=PERIOD,
        column=column,
        now=NOW,
        vacuum_hours=vacuum_hours,
        dry_run=dry_run,
    )


@pytest.fixture
def orders(tmp_path: Path) -> tuple[DeltaTables, Path]:
    tables = DeltaTables(tmp_path / "warehouse")
    table = local_path(tables.location(PRODUCT))
    assert publish(tables, table, "run-1") == 0
    return tables, table


def test_expired_rows_are_deleted_in_a_new_version_and_the_old_one_keeps_them(
    orders: tuple[DeltaTables, Path],
) -> None:
    tables, table = orders
    expired = expected_expired("order_date")
    assert 0 < expired < TOTAL

    result = apply(tables, table)

    assert result == RetentionResult(
        product=PRODUCT,
        column="order_date",
        cutoff=DATE_CUTOFF,
        rows_before=TOTAL,
        rows_deleted=expired,
        version=1,
        vacuumed=[],  # the replaced files are younger than the window
        dry_run=False,
    )
    assert tables.snapshot(table).version == 1  # type: ignore[union-attr]
    assert count(tables, table) == TOTAL - expired
    oldest, nulls = read(
        tables,
        table,
        "select min(order_date), count(*) filter (where order_date is null) from orders",
    )[0]
    assert str(oldest) == "2017-03-16"  # the cutoff's day is kept whole, the day before is gone
    assert nulls == len(range(0, 10000, 97))  # NULL dates have no age: never deleted
    assert read(tables, table, "select count(*) from orders where order_id = 10001")[0][0] == 0

    # time travel: within the safety window the previous version, expired rows included, is intact
    assert count(tables, table, version=0) == TOTAL
    before_cutoff = "select count(*) from orders where order_date < date '2017-03-16'"
    assert read(tables, table, before_cutoff, version=0)[0][0] == expired


def test_the_history_says_why_the_rows_vanished(orders: tuple[DeltaTables, Path]) -> None:
    tables, table = orders
    result = apply(tables, table)
    latest = tables.history(table)[0]
    assert latest.version == result.version
    assert latest.operation == "DELETE"
    assert latest.metadata == {
        "meshkit.operation": OPERATION,
        "meshkit.product": PRODUCT,
        "meshkit.cutoff": "2017-03-16T00:00:00+00:00",
        "meshkit.rows_deleted": result.rows_deleted,
    }
    # no run id: reconciling the catalog from the history does not mistake it for a build
    assert "meshkit.run_id" not in latest.metadata


def test_a_second_apply_deletes_nothing_and_commits_nothing(
    orders: tuple[DeltaTables, Path],
) -> None:
    tables, table = orders
    first = apply(tables, table)
    second = apply(tables, table)
    assert second.rows_before == TOTAL - first.rows_deleted
    assert second.rows_deleted == 0
    assert second.version is None
    assert second.vacuumed == []
    assert [v.version for v in tables.history(table)] == [1, 0]


def test_a_dry_run_counts_the_same_rows_and_changes_nothing(
    orders: tuple[DeltaTables, Path],
) -> None:
    tables, table = orders
    # a killed build's staged files, older than the window: what vacuum would delete
    crashed = table / "data" / "crashed-run" / "part-0.parquet"
    crashed.parent.mkdir(parents=True)
    crashed.write_bytes((table / "data" / "run-1" / "part-0.parquet").read_bytes())
    two_hours_ago = time.time() - 2 * 3600
    os.utime(crashed, (two_hours_ago, two_hours_ago))
    files_before = sorted(p for p in table.rglob("*") if p.is_file())

    dry = apply(tables, table, dry_run=True)

    assert dry.dry_run
    assert dry.version is None
    assert dry.rows_deleted == expected_expired("order_date")
    assert dry.vacuumed == ["data/crashed-run/part-0.parquet"]
    assert sorted(p for p in table.rglob("*") if p.is_file()) == files_before
    assert [v.version for v in tables.history(table)] == [0]

    real = apply(tables, table)
    assert (real.rows_before, real.rows_deleted, real.cutoff) == (
        dry.rows_before,
        dry.rows_deleted,
        dry.cutoff,
    )
    assert real.vacuumed == ["data/crashed-run/part-0.parquet"]
    assert not crashed.exists()
    assert not crashed.parent.exists()


@pytest.mark.parametrize("column", ["ordered_at", "ordered_at_tz"])
def test_timestamp_columns_expire_at_the_exact_instant(
    orders: tuple[DeltaTables, Path], column: str
) -> None:
    tables, table = orders
    schema = tables.snapshot(table).schema  # type: ignore[union-attr]
    assert schema.field(column).type.tz == (None if column == "ordered_at" else "UTC")
    expired = expected_expired(column)

    result = apply(tables, table, column=column)

    assert result.cutoff == CUTOFF
    assert result.rows_deleted == expired
    assert result.version == 1
    assert count(tables, table) == TOTAL - expired
    kept = read(tables, table, "select order_id from orders where order_id >= 10000")
    assert kept == [(10000,)]  # exactly at the cutoff: kept; a microsecond before: deleted
    nulls = read(tables, table, f"select count(*) from orders where {column} is null")[0][0]
    assert nulls == len(range(0, 10000, 97))
    assert count(tables, table, version=0) == TOTAL
    assert tables.history(table)[0].metadata["meshkit.cutoff"] == "2017-03-16T10:30:00.250000+00:00"


def test_vacuum_with_no_window_frees_the_files_and_ends_time_travel(
    orders: tuple[DeltaTables, Path],
) -> None:
    tables, table = orders
    old = tables.snapshot(table, 0)
    assert old is not None
    result = apply(tables, table)
    assert result.vacuumed == []
    assert count(tables, table, version=0) == TOTAL

    # the trade-off the window exists for: once vacuumed, the expired rows are physically gone,
    # and with them every version that still referenced their files
    removed = tables.vacuum(table, retention_hours=0)
    assert "data/run-1/part-0.parquet" in removed
    assert not any(Path(f).exists() for f in list_files(old.files))
    with pytest.raises(duckdb.IOException):
        count(tables, table, version=0)
    assert count(tables, table) == TOTAL - result.rows_deleted


def test_vacuumed_lists_only_files_that_were_there(orders: tuple[DeltaTables, Path]) -> None:
    """delta-rs re-reports every tombstone past the window on each vacuum, as an absolute path,
    even when an earlier vacuum deleted its file; the result lists only real deletions."""
    tables, table = orders
    apply(tables, table)
    assert _vacuum(tables, table, hours=0, dry_run=False) == ["data/run-1/part-0.parquet"]
    assert tables.vacuum(table, retention_hours=0, dry_run=True) != []  # the phantom
    assert _vacuum(tables, table, hours=0, dry_run=True) == []
    assert _vacuum(tables, table, hours=0, dry_run=False) == []


def test_a_window_below_the_platform_minimum_is_refused(orders: tuple[DeltaTables, Path]) -> None:
    tables, table = orders
    with pytest.raises(MeshkitError, match="refusing to vacuum"):
        apply(tables, table, vacuum_hours=0)
    assert [v.version for v in tables.history(table)] == [0]


def test_a_never_published_product_is_not_found(tmp_path: Path) -> None:
    tables = DeltaTables(tmp_path / "warehouse")
    for dry_run in (False, True):
        with pytest.raises(NotFoundError) as caught:
            apply(tables, tables.location(PRODUCT), dry_run=dry_run)
        assert "build it first" in str(caught.value.hint)


def test_a_build_publishing_meanwhile_is_a_conflict_and_nothing_is_deleted(
    orders: tuple[DeltaTables, Path],
) -> None:
    tables, table = orders
    stale = tables.open(table)  # retention counted on version 0 ...
    assert stale is not None
    assert publish(tables, table, "run-2") == 1  # ... then a build published version 1
    field = tables.snapshot(table).schema.field("order_date")  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="no rows were deleted"):
        _delete_expired(
            stale,
            expired_predicate(field, CUTOFF),
            metadata={"meshkit.operation": OPERATION},
            product_id=PRODUCT,
        )
    assert [v.version for v in tables.history(table)] == [1, 0]
    assert count(tables, table) == TOTAL


def test_column_names_are_quoted_and_matched_like_the_spec(tmp_path: Path) -> None:
    tables = DeltaTables(tmp_path / "warehouse")
    table = tables.location(PRODUCT)
    odd = 'Order "Date"'
    publish(
        tables,
        table,
        "run-1",
        f"select i::bigint as id, date '2016-01-01' + i::int as {quote_identifier(odd)} "
        "from range(1000) t(i)",
    )
    result = apply(tables, table, column=odd.lower())  # the spec matches columns case-insensitively
    assert result.column == odd
    assert result.rows_deleted == (DATE_CUTOFF.date() - datetime(2016, 1, 1).date()).days
    assert result.rows_before == 1000


def test_unusable_columns_and_periods_are_refused(orders: tuple[DeltaTables, Path]) -> None:
    tables, table = orders
    with pytest.raises(MeshkitError, match="not in the published table"):
        apply(tables, table, column="shipped_at")
    with pytest.raises(MeshkitError, match="not a date or timestamp"):
        apply(tables, table, column="amount")
    with pytest.raises(MeshkitError, match="must be positive"):
        apply_retention(
            tables, table, product_id=PRODUCT, period=timedelta(0), column="order_date",
            now=NOW, vacuum_hours=1,
        )  # fmt: skip
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_retention(
            tables, table, product_id=PRODUCT, period=PERIOD, column="order_date",
            now=NOW.replace(tzinfo=None), vacuum_hours=1,
        )  # fmt: skip
    assert [v.version for v in tables.history(table)] == [0]


def test_predicates_are_typed_literals() -> None:
    cutoff = datetime(2017, 3, 16, 10, 30, 0, 250000, tzinfo=UTC)
    date_field = pa.field("d", pa.date32())
    assert expired_predicate(date_field, cutoff) == "\"d\" < CAST('2017-03-16' AS DATE)"
    naive = pa.field("t", pa.timestamp("us"))
    assert expired_predicate(naive, cutoff) == (
        "\"t\" < arrow_cast('2017-03-16T10:30:00.250000', 'Timestamp(Microsecond, None)')"
    )
    aware = pa.field("t", pa.timestamp("us", tz="UTC"))
    assert expired_predicate(aware, cutoff) == (
        "\"t\" < arrow_cast('2017-03-16T10:30:00.250000', 'Timestamp(Microsecond, Some(\"UTC\"))')"
    )


def test_the_predicate_is_one_ast_rendered_for_delta_rs() -> None:
    cutoff = datetime(2017, 3, 16, 10, 30, 0, 250000, tzinfo=UTC)
    nanos = expired_rows(pa.field("t", pa.timestamp("ns")), cutoff)
    assert isinstance(nanos, exp.LT)
    assert for_delta(nanos) == (
        "\"t\" < arrow_cast('2017-03-16T10:30:00.250000', 'Timestamp(Nanosecond, None)')"
    )
    count = exp.select(exp.Count(this=exp.Star())).from_("t").where(nanos)
    assert for_delta(count).endswith("WHERE " + for_delta(nanos))
    with pytest.raises(ValueError, match="not a date or timestamp"):
        expired_rows(pa.field("n", pa.int64()), cutoff)


def test_the_result_serialises(orders: tuple[DeltaTables, Path]) -> None:
    tables, table = orders
    data = apply(tables, table, dry_run=True).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["cutoff"] == "2017-03-16T00:00:00+00:00"
    assert data["dry_run"] is True
