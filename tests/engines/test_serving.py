"""The serving engine on its own: views over exactly the given files, nothing else readable,
timeouts, stops from another thread, and errors that quote no value."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from meshkit.access.query import Cancel
from meshkit.engines.serving import DuckDBServing
from meshkit.errors import AccessDenied, MeshkitError

COLUMNS = [("id", "BIGINT"), ("secret", "VARCHAR")]


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    """A product's file, and another file next to it that no view names."""
    data = tmp_path / "data.parquet"
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "secret": ["a", "b", "c"]}), data)
    pq.write_table(pa.table({"x": [42]}), other)
    return str(data), str(other)


def view(files: list[str], where: exp.Expr | None = None) -> str:
    projections = [exp.column("id", quoted=True)]
    return DuckDBServing.view_sql("shop.items", projections, files, columns=COLUMNS, where=where)


def run(sql: str, files: list[str], views: list[str], *, timeout_s: float = 10) -> pa.Table:
    return DuckDBServing(threads=1).run(
        sql, files=files, schemas=["shop"], views=views, timeout_s=timeout_s, stop=Cancel()
    )


def test_the_engine_declares_its_name_and_dialect() -> None:
    assert (DuckDBServing.name, DuckDBServing.dialect) == ("duckdb", "duckdb")


def test_a_view_reads_its_files_with_its_filter(files: tuple[str, str]) -> None:
    data, _ = files
    keep = exp.GT(this=exp.column("id", quoted=True), expression=exp.Literal.number(1))
    table = run("select * from shop.items order by id", [data], [view([data], keep)])
    assert table.to_pylist() == [{"id": 2}, {"id": 3}]


def test_a_view_over_no_files_keeps_its_columns(files: tuple[str, str]) -> None:
    table = run("select * from shop.items", [], [view([])])
    assert table.num_rows == 0
    assert table.schema.names == ["id"]


def test_no_other_file_can_be_read(files: tuple[str, str]) -> None:
    data, other = files
    with pytest.raises(AccessDenied, match="reach outside"):
        run(f"select * from read_parquet('{other}')", [data], [view([data])])


def test_errors_quote_no_value_and_carry_the_callers_hint(files: tuple[str, str]) -> None:
    data, _ = files
    with pytest.raises(MeshkitError, match="values are not shown") as caught:
        run("select cast('p4ssw0rd' as int)", [data], [view([data])])
    assert "p4ssw0rd" not in str(caught.value)
    with pytest.raises(MeshkitError, match="the query failed") as failed:
        DuckDBServing().run(
            "select nope from shop.items",
            files=[data],
            schemas=["shop"],
            views=[view([data])],
            timeout_s=10,
            stop=Cancel(),
            failed_hint="check the names",
        )
    assert failed.value.hint == "check the names"


def test_a_query_stops_at_its_timeout_and_when_stopped() -> None:
    slow = "select count(*) from range(100000000000) a"
    with pytest.raises(MeshkitError, match=r"cancelled after 0\.3 s"):
        run(slow, [], [], timeout_s=0.3)
    stop = Cancel()
    threading.Timer(0.3, stop.set, args=("the client went away",)).start()
    with pytest.raises(MeshkitError, match="the client went away"):
        DuckDBServing().run(slow, files=[], schemas=[], views=[], timeout_s=30, stop=stop)
