"""meshkit.connectors: SQL table/query -> Parquet, against real SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import random
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from meshkit.connectors import ExportResult, export_table
from meshkit.errors import InputError
from meshkit.urls import mask_url

ROWS = 10_000
PG_URL = os.environ.get("MESHKIT_TEST_POSTGRES_URL", "")
needs_postgres = pytest.mark.skipif(
    not PG_URL,
    reason="MESHKIT_TEST_POSTGRES_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1"
    ":5432/test); skipping the PostgreSQL tests",
)


# --------------------------------------------------------------------------- fixtures


def _orders(n: int) -> list[dict[str, Any]]:
    """Deterministic, realistic order rows with NULLs sprinkled in."""
    rnd = random.Random(20240501)
    start = dt.datetime(2023, 1, 1, 8, 0, 0)
    names = ["Ada Lovelace", "Grace Hopper", "Édouard Lucas", "李小龙", "O'Brien", "Zoë"]
    rows = []
    for i in range(1, n + 1):
        created = start + dt.timedelta(seconds=rnd.randrange(0, 400 * 86_400), microseconds=i)
        rows.append(
            {
                "id": i,
                "customer_id": None if i % 17 == 0 else rnd.randrange(1, 2_000_000_000_000),
                "quantity": rnd.randrange(1, 500),
                "amount": None
                if i % 23 == 0
                else Decimal(rnd.randrange(-50_000, 10_000_000)) / 100,
                "discount": None if i % 7 == 0 else rnd.random() / 4,
                "customer": None if i % 11 == 0 else f"{rnd.choice(names)} #{i}",
                "order_date": None if i % 13 == 0 else created.date(),
                "created_at": None if i % 29 == 0 else created,
                "shipped": None if i % 31 == 0 else rnd.random() < 0.8,
            }
        )
    return rows


@pytest.fixture(scope="module")
def orders_rows() -> list[dict[str, Any]]:
    return _orders(ROWS)


@pytest.fixture(scope="module")
def shop_db(tmp_path_factory: pytest.TempPathFactory, orders_rows: list[dict[str, Any]]) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "shop.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    meta = sa.MetaData()
    orders = sa.Table(
        "orders",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.BigInteger),
        sa.Column("quantity", sa.SmallInteger, nullable=False),
        sa.Column("amount", sa.Numeric(15, 2)),
        sa.Column("discount", sa.Float),
        sa.Column("customer", sa.String(80)),
        sa.Column("order_date", sa.Date),
        sa.Column("created_at", sa.DateTime),
        sa.Column("shipped", sa.Boolean),
    )
    sa.Table("customers", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("order_items", meta, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("empty_orders", meta, *(c._copy() for c in orders.columns))
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(orders.insert(), orders_rows)
    finally:
        engine.dispose()
    return path


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- SQLite tables


def test_table_round_trips_through_pyarrow_and_duckdb(
    shop_db: Path, orders_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    dest = tmp_path / "staging" / "nested" / "orders.parquet"

    result = export_table(_sqlite_url(shop_db), table="orders", dest=dest)

    assert isinstance(result, ExportResult)
    assert result.path == dest
    assert result.rows == ROWS
    assert result.columns == list(orders_rows[0])
    assert result.source == f"sqlite:///{shop_db}/orders"
    assert [p.name for p in dest.parent.iterdir()] == ["orders.parquet"]  # no temp files left

    table = pq.read_table(dest)
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("customer_id", pa.int64()),
            ("quantity", pa.int64()),
            ("amount", pa.decimal128(15, 2)),
            ("discount", pa.float64()),
            ("customer", pa.string()),
            ("order_date", pa.date32()),
            ("created_at", pa.timestamp("us")),
            ("shipped", pa.bool_()),
        ]
    )
    assert table.to_pylist() == orders_rows

    con = duckdb.connect()
    try:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(dest)]).fetchall()
        assert {row[0]: row[1] for row in described} == {
            "id": "BIGINT",
            "customer_id": "BIGINT",
            "quantity": "BIGINT",
            "amount": "DECIMAL(15,2)",
            "discount": "DOUBLE",
            "customer": "VARCHAR",
            "order_date": "DATE",
            "created_at": "TIMESTAMP",
            "shipped": "BOOLEAN",
        }
        rows = con.execute("SELECT * FROM read_parquet(?) ORDER BY id", [str(dest)]).fetchall()
        total, nulls = con.execute(
            "SELECT sum(amount), count(*) - count(amount) FROM read_parquet(?)", [str(dest)]
        ).fetchone() or (None, None)
    finally:
        con.close()
    assert rows == [tuple(r.values()) for r in orders_rows]
    assert total == sum(r["amount"] for r in orders_rows if r["amount"] is not None)
    assert nulls == sum(r["amount"] is None for r in orders_rows)


def test_small_batches_stream_into_several_row_groups(
    shop_db: Path, orders_rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    dest = tmp_path / "orders.parquet"

    result = export_table(_sqlite_url(shop_db), table="orders", dest=dest, batch_size=1_000)

    parquet = pq.ParquetFile(dest)
    assert parquet.metadata.num_row_groups == math.ceil(ROWS / 1_000)
    assert {parquet.metadata.row_group(i).num_rows for i in range(10)} == {1_000}
    assert result.rows == parquet.metadata.num_rows == ROWS
    assert parquet.read().to_pylist() == orders_rows


def test_uneven_last_batch(shop_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "orders.parquet"
    export_table(_sqlite_url(shop_db), table="orders", dest=dest, batch_size=3_000)
    meta = pq.ParquetFile(dest).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        3_000,
        3_000,
        3_000,
        1_000,
    ]


def test_schema_qualified_table_and_overwrite(shop_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "orders.parquet"
    dest.write_text("stale")
    result = export_table(_sqlite_url(shop_db), table="orders", schema="main", dest=dest)
    assert result.source.endswith("/main.orders")
    assert pq.read_metadata(dest).num_rows == ROWS


def test_empty_table_writes_a_valid_file_with_the_schema(shop_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "empty.parquet"

    result = export_table(_sqlite_url(shop_db), table="empty_orders", dest=dest)

    assert result.rows == 0
    table = pq.read_table(dest)
    assert table.num_rows == 0
    assert table.schema.field("amount").type == pa.decimal128(15, 2)
    assert table.schema.field("created_at").type == pa.timestamp("us")
    con = duckdb.connect()
    try:
        count = con.execute("SELECT count(*) FROM read_parquet(?)", [str(dest)]).fetchone()
    finally:
        con.close()
    assert count == (0,)


def test_other_sqlite_types(tmp_path: Path) -> None:
    db = tmp_path / "misc.db"
    engine = sa.create_engine(_sqlite_url(db))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE misc (id INTEGER PRIMARY KEY, price NUMERIC, payload BLOB,"
                " attrs JSON, at_time TIME, stamp TIMESTAMP, untyped, ratio DOUBLE)"
            )
            misc = sa.Table("misc", sa.MetaData(), autoload_with=conn)
            conn.execute(
                misc.insert(),
                {
                    "id": 1,
                    "price": Decimal("9.99"),
                    "payload": b"\x00\xff",
                    "attrs": {"tags": ["a", "b"], "n": 1},
                    "at_time": dt.time(13, 45, 1, 250),
                    "stamp": dt.datetime(2024, 2, 29, 23, 59, 59),
                    "untyped": 42,
                    "ratio": 0.5,
                },
            )
            conn.execute(misc.insert(), {"id": 2, "untyped": 7})
    finally:
        engine.dispose()

    dest = tmp_path / "misc.parquet"
    export_table(_sqlite_url(db), table="misc", dest=dest)

    table = pq.read_table(dest)
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "id": pa.int64(),
        "price": pa.float64(),  # NUMERIC without precision
        "payload": pa.binary(),
        "attrs": pa.string(),
        "at_time": pa.time64("us"),
        "stamp": pa.timestamp("us"),
        "untyped": pa.int64(),  # no declared type: inferred from the values
        "ratio": pa.float64(),
    }
    first, second = table.to_pylist()
    assert first["price"] == pytest.approx(9.99)
    assert first["payload"] == b"\x00\xff"
    assert json.loads(first["attrs"]) == {"tags": ["a", "b"], "n": 1}
    assert first["at_time"] == dt.time(13, 45, 1, 250)
    assert first["stamp"] == dt.datetime(2024, 2, 29, 23, 59, 59)
    assert second == dict.fromkeys(first) | {"id": 2, "untyped": 7}


def test_mixed_types_in_a_sqlite_column_are_reported(tmp_path: Path) -> None:
    db = tmp_path / "mixed.db"
    engine = sa.create_engine(_sqlite_url(db))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE readings (id INTEGER PRIMARY KEY, value INTEGER)")
            conn.exec_driver_sql("INSERT INTO readings VALUES (1, 10), (2, 20), (3, 'n/a')")
    finally:
        engine.dispose()
    dest = tmp_path / "out" / "readings.parquet"

    with pytest.raises(InputError) as info:
        export_table(_sqlite_url(db), table="readings", dest=dest)

    assert "'value'" in info.value.message
    assert "row 3" in info.value.message
    assert "'n/a'" in info.value.message
    assert info.value.hint
    assert "CAST" in info.value.hint
    assert list(dest.parent.iterdir()) == []  # nothing half-written left behind


# --------------------------------------------------------------------------- SQLite queries


def test_query_export(shop_db: Path, orders_rows: list[dict[str, Any]], tmp_path: Path) -> None:
    dest = tmp_path / "q.parquet"
    query = """
        -- big orders, with a literal that looks like a bind parameter
        SELECT id, customer, CAST(amount AS REAL) AS amount, quantity * 2 AS double_qty,
               ':not_a_param' AS tag
        FROM orders
        WHERE customer LIKE '%#1%' AND amount > 1000
        ORDER BY id;
    """

    result = export_table(_sqlite_url(shop_db), query=query, dest=dest, batch_size=500)

    expected = [
        {
            "id": r["id"],
            "customer": r["customer"],
            "amount": float(r["amount"]),
            "double_qty": r["quantity"] * 2,
            "tag": ":not_a_param",
        }
        for r in orders_rows
        if r["customer"] and "#1" in r["customer"] and r["amount"] and r["amount"] > 1000
    ]
    assert result.source == f"sqlite:///{shop_db}[query]"
    assert result.columns == ["id", "customer", "amount", "double_qty", "tag"]
    assert result.rows == len(expected) > 500
    table = pq.read_table(dest)
    assert table.schema.types == [pa.int64(), pa.string(), pa.float64(), pa.int64(), pa.string()]
    assert table.to_pylist() == expected
    assert pq.ParquetFile(dest).metadata.num_row_groups == math.ceil(len(expected) / 500)


def test_query_with_no_rows_and_no_types_stages_strings(shop_db: Path, tmp_path: Path) -> None:
    dest = tmp_path / "none.parquet"
    result = export_table(
        _sqlite_url(shop_db), query="SELECT id, amount FROM orders WHERE 0", dest=dest
    )
    assert result.rows == 0
    assert pq.read_schema(dest) == pa.schema([("id", pa.string()), ("amount", pa.string())])


def test_query_must_be_a_select_and_never_writes(shop_db: Path, tmp_path: Path) -> None:
    url = _sqlite_url(shop_db)
    with pytest.raises(InputError, match="must be a SELECT, got DELETE") as info:
        export_table(url, query="DELETE FROM orders", dest=tmp_path / "x.parquet")
    assert info.value.hint

    # A data-modifying statement disguised behind a CTE is stopped by the read-only connection.
    with pytest.raises(InputError, match="tries to modify the database") as info:
        export_table(
            url,
            query="WITH gone AS (SELECT 1) DELETE FROM orders WHERE id IN (SELECT * FROM gone)",
            dest=tmp_path / "x.parquet",
        )
    assert info.value.hint
    check = tmp_path / "check.parquet"
    assert export_table(url, table="orders", dest=check).rows == ROWS


def test_query_syntax_error(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the query failed") as info:
        export_table(_sqlite_url(shop_db), query="SELECT FROM WHERE", dest=tmp_path / "x.parquet")
    assert info.value.hint
    assert "dialect" in info.value.hint


def test_duplicate_column_names_are_rejected(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="more than one column named 'id'"):
        export_table(
            _sqlite_url(shop_db),
            query="SELECT o.id, c.id FROM orders o JOIN customers c ON c.id = o.id",
            dest=tmp_path / "x.parquet",
        )


# --------------------------------------------------------------------------- user errors


def test_unknown_table_suggests_the_closest(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        export_table(_sqlite_url(shop_db), table="ordrs", dest=tmp_path / "x.parquet")

    assert "'ordrs'" in info.value.message
    hint = info.value.hint or ""
    assert "did you mean 'orders'" in hint
    assert "customers" in hint
    assert "order_items" in hint
    assert not (tmp_path / "x.parquet").exists()


def test_unknown_schema(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="schema 'mian' not found") as info:
        export_table(
            _sqlite_url(shop_db), table="orders", schema="mian", dest=tmp_path / "x.parquet"
        )
    assert "did you mean 'main'" in (info.value.hint or "")


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "shop.db"

    with pytest.raises(InputError, match="SQLite database file not found") as info:
        export_table(_sqlite_url(missing), table="orders", dest=tmp_path / "x.parquet")

    assert str(missing) in info.value.message
    assert info.value.hint
    assert not missing.exists()
    assert not missing.parent.exists()


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(InputError, match="not a SQLite database") as info:
        export_table(_sqlite_url(bogus), table="orders", dest=tmp_path / "x.parquet")
    assert info.value.hint


@pytest.mark.parametrize(
    "url",
    ["not a url", "", "postgresql://user:hunter2pw@db.example.com:notaport/sales"],
)
def test_bad_url(url: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        export_table(url, table="orders", dest=tmp_path / "x.parquet")
    assert "sqlite:///path/to.db" in (info.value.hint or "")
    assert "hunter2pw" not in str(info.value)


def test_unsupported_url_option(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="invalid database URL") as info:
        export_table(f"{_sqlite_url(shop_db)}?bogus=1", table="orders", dest=tmp_path / "x")
    assert info.value.hint


def test_unknown_database_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown database type 'nosuchdb'") as info:
        export_table("nosuchdb://u:hunter2pw@host/db", table="t", dest=tmp_path / "x.parquet")
    assert info.value.hint
    assert "hunter2pw" not in str(info.value)


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed"
)
def test_missing_driver(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"driver .* is not installed") as info:
        export_table(
            "postgresql+psycopg2://u:hunter2pw@127.0.0.1/db", table="t", dest=tmp_path / "x"
        )
    assert "meshkit[postgres]" in (info.value.hint or "")
    assert "hunter2pw" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of `table` and `query`"),
        ({"table": "orders", "query": "SELECT 1"}, "exactly one of `table` and `query`"),
        ({"query": "SELECT 1", "schema": "main"}, "`schema` only applies to `table`"),
        ({"table": "orders", "batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_arguments(shop_db: Path, tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        export_table(_sqlite_url(shop_db), dest=tmp_path / "x.parquet", **kwargs)
    assert info.value.hint


def test_destination_is_a_directory(shop_db: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory") as info:
        export_table(_sqlite_url(shop_db), table="orders", dest=tmp_path)
    assert info.value.hint


def test_connection_refused_names_the_host_but_not_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://meshuser:s3cr3t-pw@127.0.0.1:1/test"

    with pytest.raises(InputError) as info:
        export_table(url, table="orders", dest=tmp_path / "x.parquet")

    text = str(info.value)
    assert "127.0.0.1:1" in info.value.message
    assert "connection refused" in info.value.message
    assert "s3cr3t-pw" not in text
    assert "meshuser:***@127.0.0.1:1" in text
    assert info.value.hint
    assert "127.0.0.1:1" in info.value.hint


def test_mask_url() -> None:
    assert mask_url("postgresql+psycopg://ann:p%40ss@db:5432/sales") == (
        "postgresql+psycopg://ann:***@db:5432/sales"
    )
    assert mask_url("sqlite:///data/shop.db") == "sqlite:///data/shop.db"
    assert "topsecret" not in mask_url("postgresql://ann@db/sales?password=topsecret")
    assert mask_url("postgresql://ann:topsecret@db:port/sales") == (
        "postgresql://ann:***@db:port/sales"
    )


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_engine() -> Any:
    engine = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_table(pg_engine: sa.Engine) -> Any:
    """A uniquely named table of 2,500 rows; dropped afterwards."""
    name = f"meshkit_test_{uuid.uuid4().hex[:12]}"
    rnd = random.Random(7)
    start = dt.datetime(2024, 3, 30, 22, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = [
        {
            "id": i,
            "amount": None if i % 19 == 0 else Decimal(rnd.randrange(-(10**6), 10**12)) / 100,
            "created_at": None if i % 23 == 0 else start + dt.timedelta(minutes=37 * i),
            "day": None if i % 29 == 0 else dt.date(2024, 1, 1) + dt.timedelta(days=i % 366),
            "label": None if i % 31 == 0 else f"row {i} ünïcode 100% :x",
            "active": None if i % 37 == 0 else i % 2 == 0,
            "attrs": None if i % 41 == 0 else {"i": i, "tags": ["x", "y"][: i % 3], "ok": True},
            "qty": i % 300,
            "ratio": i / 7,
        }
        for i in range(1, 2_501)
    ]
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, amount numeric(15,2),"
            " created_at timestamptz, day date, label text, active bool, attrs jsonb,"
            " qty smallint NOT NULL, ratio double precision)"
        )
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        conn.execute(table.insert(), rows)
    try:
        yield name, rows
    finally:
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.postgres
@needs_postgres
def test_postgres_table_export(pg_table: Any, tmp_path: Path) -> None:
    name, rows = pg_table
    dest = tmp_path / "pg.parquet"

    result = export_table(PG_URL, table=name, dest=dest, batch_size=1_000)

    assert result.rows == len(rows)
    assert result.source == f"{mask_url(PG_URL)}/{name}"
    parquet = pq.ParquetFile(dest)
    assert parquet.metadata.num_row_groups == 3
    table = parquet.read()
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "id": pa.int64(),
        "amount": pa.decimal128(15, 2),
        "created_at": pa.timestamp("us", tz="UTC"),
        "day": pa.date32(),
        "label": pa.string(),
        "active": pa.bool_(),
        "attrs": pa.string(),
        "qty": pa.int64(),
        "ratio": pa.float64(),
    }
    got = table.to_pylist()
    for row in got:
        row["attrs"] = None if row["attrs"] is None else json.loads(row["attrs"])
    assert got == rows  # aware datetimes compare by instant

    con = duckdb.connect()
    try:
        total, first_ts = con.execute(
            "SELECT sum(amount), min(created_at) FROM read_parquet(?)", [str(dest)]
        ).fetchone() or (None, None)
    finally:
        con.close()
    assert total == sum(r["amount"] for r in rows if r["amount"] is not None)
    assert first_ts == min(r["created_at"] for r in rows if r["created_at"] is not None)


@pytest.mark.postgres
@needs_postgres
def test_postgres_query_export(pg_table: Any, tmp_path: Path) -> None:
    name, rows = pg_table
    dest = tmp_path / "pgq.parquet"
    query = (
        f"SELECT id, amount, amount * 2 AS doubled, created_at, attrs, label"
        f" FROM {name} WHERE active AND label LIKE '%100\\% :x' ORDER BY id"
    )

    result = export_table(PG_URL, query=query, dest=dest, batch_size=300)

    expected = [r for r in rows if r["active"] and r["label"]]
    assert result.rows == len(expected) > 300
    assert pq.ParquetFile(dest).metadata.num_row_groups == math.ceil(len(expected) / 300)
    table = pq.read_table(dest)
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == {
        "id": pa.int64(),
        "amount": pa.decimal128(15, 2),  # numeric(15,2) from the cursor description
        "doubled": pa.float64(),  # unconstrained numeric: precision unknown
        "created_at": pa.timestamp("us", tz="UTC"),
        "attrs": pa.string(),
        "label": pa.string(),
    }
    got = table.to_pylist()
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert [r["amount"] for r in got] == [r["amount"] for r in expected]
    assert [r["created_at"] for r in got] == [r["created_at"] for r in expected]
    assert [None if r["attrs"] is None else json.loads(r["attrs"]) for r in got] == [
        r["attrs"] for r in expected
    ]


@pytest.mark.postgres
@needs_postgres
def test_postgres_query_is_read_only(pg_table: Any, pg_engine: sa.Engine, tmp_path: Path) -> None:
    name, rows = pg_table
    query = f"WITH gone AS (DELETE FROM {name} RETURNING id) SELECT * FROM gone"
    with pytest.raises(InputError, match="tries to modify the database") as info:
        export_table(PG_URL, query=query, dest=tmp_path / "x.parquet")
    assert info.value.hint
    with pg_engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() == len(rows)


@pytest.mark.postgres
@needs_postgres
def test_postgres_unknown_table(pg_table: Any, tmp_path: Path) -> None:
    name, _ = pg_table
    with pytest.raises(InputError) as info:
        export_table(PG_URL, table=name[:-1], dest=tmp_path / "x.parquet")
    assert f"did you mean '{name}'" in (info.value.hint or "")


@pytest.mark.postgres
@needs_postgres
def test_postgres_permission_denied(pg_table: Any, pg_engine: sa.Engine, tmp_path: Path) -> None:
    name, _ = pg_table
    role = f"meshkit_reader_{uuid.uuid4().hex[:8]}"
    with pg_engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
    try:
        url = sa.engine.make_url(PG_URL).set(username=role, password="hunter2pw")
        with pytest.raises(InputError, match="permission denied") as info:
            export_table(
                url.render_as_string(hide_password=False),
                table=name,
                dest=tmp_path / "x.parquet",
            )
        assert f"GRANT SELECT ON {name} TO {role}" in (info.value.hint or "")
        assert "hunter2pw" not in str(info.value)
    finally:
        with pg_engine.begin() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.postgres
@needs_postgres
def test_postgres_missing_database(tmp_path: Path) -> None:
    url = sa.engine.make_url(PG_URL).set(database=f"meshkit_nope_{uuid.uuid4().hex[:8]}")
    with pytest.raises(InputError, match="does not exist") as info:
        export_table(url.render_as_string(hide_password=False), table="t", dest=tmp_path / "x")
    assert info.value.hint
