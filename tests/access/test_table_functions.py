"""The table functions a query may call (`range`, `generate_series`, `unnest` with constant
arguments) and PIVOT/UNPIVOT anywhere a FROM item may be: their answers through the real query
path, and attacks showing that each stays inside the guard's guarantees (no file, no other
table function or refused function through its arguments, no hidden product, masks and row
filter kept, bounded by the row limit and the timeout).

Answers over products are compared with the same query over a pre-masked copy in
`test_security.py` (the SAME table there); here are the forms that read no product, and the
refusals."""

from __future__ import annotations

import dataclasses
import time
from datetime import date, timedelta

import pytest

from access.conftest import CONSUMER, CUSTOMERS
from meshkit.access import guard
from meshkit.errors import AccessDenied, MeshkitError
from meshkit.sql import duckdb_guard as parsetree
from meshkit.sql.duckdb_parser import parse as duckdb_parse
from meshkit.sql.duckdb_parser import statement_types
from meshkit.workspace import Workspace

C = CUSTOMERS


def _rows(ws: Workspace, sql: str) -> list[dict[str, object]]:
    result = ws.access.query(ws.access.caller(CONSUMER), sql)
    return list(result.table.to_pylist())


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select * from range(3)", [{"range": 0}, {"range": 1}, {"range": 2}]),
        ("from range(1, 10, 4) t(i)", [{"i": 1}, {"i": 5}, {"i": 9}]),
        ("select * from generate_series(2, 4) g(n)", [{"n": 2}, {"n": 3}, {"n": 4}]),
        ("select * from generate_series(2)", [{"generate_series": i} for i in range(3)]),
        ("select * from unnest([1, 2, 3]) u(x)", [{"x": 1}, {"x": 2}, {"x": 3}]),
        (
            "select * from unnest(['a', 'b']) with ordinality u(x, n)",
            [
                {"x": "a", "n": 1},
                {"x": "b", "n": 2},
            ],
        ),
        ("select * from unnest([struct_pack(a := 1, b := 'x')])", [{"unnest": {"a": 1, "b": "x"}}]),
        (
            "select d from range(date '2024-01-30', date '2024-02-02', interval 1 day) t(d)",
            [{"d": f"{day}T00:00:00"} for day in ("2024-01-30", "2024-01-31", "2024-02-01")],
        ),
        ("select sum(i) as s from range(101) t(i)", [{"s": 5050}]),
        (
            "select i, x from range(2) r(i) join unnest(['p', 'q']) u(x) on true order by i, x",
            [{"i": 0, "x": "p"}, {"i": 0, "x": "q"}, {"i": 1, "x": "p"}, {"i": 1, "x": "q"}],
        ),
        ("with w as (select * from range(2) t(i)) select count(*) as n from w", [{"n": 2}]),
        (
            "select * from (unpivot (select 1 as a, 2 as b) on a, b into name k value v) u",
            [{"k": "a", "v": 1}, {"k": "b", "v": 2}],
        ),
        (
            "pivot (select * from unnest(['x', 'y', 'x']) u(k)) on k using count(*)",
            [{"x": 2, "y": 1}],
        ),
        (
            "with t as (select * from unnest(['x', 'y', 'x']) u(k)) "
            "select * from (pivot t on k using count(*)) p",
            [{"x": 2, "y": 1}],
        ),
        (
            "select * from (pivot (select * from unnest(['x', 'y']) u(k)) on k in ('y') "
            "using count(*)) p",
            [{"y": 1}],
        ),
    ],
)
def test_table_functions_and_pivots_answer_through_the_query_path(
    granted: Workspace, sql: str, expected: list[dict[str, object]]
) -> None:
    rows = _rows(granted, sql)
    normal = [{k: v.isoformat() if isinstance(v, date) else v for k, v in r.items()} for r in rows]
    assert normal == expected


def test_a_table_function_joins_a_product_through_its_masked_view(granted: Workspace) -> None:
    """Rows of `range` joined to a product see the product as the caller may: masked values
    and only the rows its filter keeps (EUROPE for this consumer)."""
    rows = _rows(
        granted,
        f"""select r.i, c.region, c.address, c.account_balance
        from range(5) r(i) join {C} c on c.customer_key % 5 = r.i""",
    )
    assert rows
    assert {r["region"] for r in rows} == {"EUROPE"}
    assert {r["address"] for r in rows} == {"***"}
    assert {r["account_balance"] for r in rows} == {None}
    assert {r["i"] for r in rows} <= set(range(5))


def test_a_pivot_of_a_product_sees_only_the_filtered_rows(granted: Workspace) -> None:
    """The pivot's columns come from the values the caller may see: only EUROPE, whose count
    is that of the EUROPE rows."""
    rows = _rows(
        granted, f"select * from (pivot (select region from {C}) on region using count(*)) p"
    )
    europe = _rows(granted, f"select count(*) as n from {C}")[0]["n"]
    assert rows == [{"EUROPE": europe}]
    # a PIVOT statement at the top level, and a masked column pivoted: its masked values
    masked = _rows(granted, f"pivot (select address from {C}) on address using count(*)")
    assert masked == [{"***": europe}]


def test_the_audit_log_records_a_query_over_no_product(granted: Workspace) -> None:
    _rows(granted, "select * from range(4)")
    last = granted.catalog.audit.entries()[-1]
    assert last.action == "query"
    assert last.subject == ""
    assert last.detail["decision"] == "allowed"
    assert last.detail["rows"] == 4


# Each is refused (AccessDenied, or a MeshkitError DuckDB raised in the locked-down engine)
# and reads nothing: file paths, other table functions, refused functions and subqueries
# cannot ride in on an allowed table function's arguments or a PIVOT's source.
REFUSED = {
    "range-of-a-subquery": f"select * from range((select count(*) from {C}))",
    "range-of-an-unknown-product": "select * from range((select count(*) from hr.salaries))",
    "range-of-a-column": f"select * from {C} c, range(c.customer_key)",
    "lateral-range": f"select * from {C} c, lateral range(c.customer_key)",
    "unnest-of-a-column": f"select * from {C} c, unnest([c.phone])",
    "lateral-unnest-of-a-column": f"select * from {C} c, lateral unnest([c.phone])",
    "unnest-of-a-file": "select * from unnest((select list(line) from read_csv('/etc/passwd')))",
    "unnest-of-read-text": "select * from unnest([(select content from read_text('/etc/hostname'))])",
    "range-of-getenv": "select * from range(length(getenv('HOME')))",
    "range-of-a-setting": "select * from range(current_setting('threads')::int)",
    "range-of-a-quoted-setting": """select * from range("current_setting"('threads')::int)""",
    "range-of-error": "select * from range(error('x')::int)",
    "range-named-parameter": "select * from range(3, foo := 1)",
    "unnest-named-parameter": "select * from unnest([[1]], recursive := true)",
    "range-of-a-window": "select * from range(row_number() over ())",
    "range-of-a-star": "select * from range(*)",
    "range-of-a-lambda": "select * from unnest(list_transform([1], x -> x + 1))",
    "range-of-a-parameter": "select * from range($1)",
    "qualified-range": "select * from main.range(3)",
    "catalog-qualified-range": "select * from system.main.range(3)",
    "repeat": "select * from repeat(1, 3)",
    "repeat-row": "select * from repeat_row(1, num_rows := 3)",
    "json-each": """select * from json_each('{"a": 1}')""",
    "generate-subscripts": "select * from generate_subscripts([1, 2], 1)",
    "test-all-types": "select * from test_all_types()",
    "query-table": f"select * from query_table('{C}')",
    "sniff-csv": "select * from sniff_csv('/etc/passwd')",
    "parquet-metadata": "select * from parquet_metadata('x.parquet')",
    "pragma-version": "select * from pragma_version()",
    "which-secret": "select * from which_secret('s3://x', 's3')",
    "summary": f"select * from summary((select * from {C}))",
    "duckdb-settings-in-range-subquery": "select * from range((select count(*) from duckdb_settings()))",
    "pivot-a-file": "pivot '/etc/passwd' on column0 using count(*)",
    "pivot-read-csv": "select * from (pivot read_csv('/etc/passwd') on column0 using count(*)) p",
    "pivot-a-system-view": "pivot duckdb_settings() on name using count(*)",
    "pivot-information-schema": "pivot information_schema.tables on table_name using count(*)",
    "pivot-an-unknown-product": "select * from (pivot hr.salaries on grade using count(*)) p",
    "pivot-values-from-a-subquery": f"pivot {C} on region in (select 'ASIA') using count(*)",
    "pivot-on-an-expression": f"pivot {C} on region || nation using count(*)",
    "pivot-using-a-refused-function": f"pivot {C} on region using max(getenv('HOME'))",
    "pivot-cte-out-of-scope": f"""select * from (pivot duckdb_views on sql using count(*)) p
        where exists (with duckdb_views as (select 1) select 1 from duckdb_views)
        and (select count(*) from {C}) > 0""",
    "unpivot-a-system-view": "unpivot duckdb_settings() on value into name k value v",
    # the probe's own text written by the caller: the text that runs would no longer be the
    # checked text without the probes
    "pivot-probe-text": f"""select * from (pivot (select region from {C}) on region
        using count(*)) a, (pivot (select region from {C}) on region
        in ('__meshkit_pivot_values__') using count(*)) b""",
}


@pytest.mark.parametrize("sql", REFUSED.values(), ids=REFUSED.keys())
def test_an_attack_through_a_table_function_or_pivot_is_refused(
    granted: Workspace, sql: str
) -> None:
    with pytest.raises(MeshkitError) as caught:
        granted.access.query(granted.access.caller(CONSUMER), sql)
    assert "/etc" not in str(caught.value) or "not a data product" in str(caught.value)
    last = granted.catalog.audit.entries()[-1]
    assert last.action == "query"
    assert last.detail["decision"] == "refused"


# DuckDB's own parse tree must refuse the same calls by itself (the second layer, which
# checks the text that runs): each is given to it as written, past sqlglot.
DUCKDB_REFUSED = {
    "column-argument": "select * from t, range(t.x)",
    "subquery-argument": "select * from range((select 1))",
    "named-parameter": "select * from range(3, foo := 1)",
    "unnest-named-parameter": "select * from unnest([[1]], recursive := true)",
    "qualified": "select * from main.range(3)",
    "star-argument": "select * from range(*)",
    "window-argument": "select * from range(row_number() over ())",
    "lambda-argument": "select * from unnest(list_transform([1], x -> x + 1))",
    "read-csv": "select * from read_csv('/etc/passwd')",
    "json-each": "select * from json_each('[1]')",
    "repeat": "select * from repeat(1, 3)",
    "refused-function-in-argument": "select * from range(length(getenv('HOME')))",
}


@pytest.mark.parametrize("sql", DUCKDB_REFUSED.values(), ids=DUCKDB_REFUSED.keys())
def test_duckdbs_parse_tree_refuses_table_function_calls_on_its_own(sql: str) -> None:
    parsed = duckdb_parse(sql)
    assert parsed is not None
    assert not parsed.get("error"), parsed
    with pytest.raises(AccessDenied):
        parsetree.check_tree(parsed["statements"][0], {"t.x"}, set())


def test_duckdbs_parse_tree_accepts_the_allowed_calls() -> None:
    for sql in (
        "select * from range(3)",
        "select * from generate_series(1, 3, 1)",
        "select * from unnest([1, 2]) with ordinality",
        "select * from range(date '2024-01-01', date '2024-02-01', interval 1 day)",
    ):
        parsed = duckdb_parse(sql)
        assert parsed is not None
        assert not parsed.get("error")
        parsetree.check_tree(parsed["statements"][0], set(), set())


def test_a_hidden_product_in_a_table_function_answers_like_a_missing_one(
    granted: Workspace,
) -> None:
    ws = granted
    product = ws.mesh.products["supply.suppliers"]
    hidden = dataclasses.replace(
        product, spec=product.spec.model_copy(update={"classification": "restricted"})
    )
    ws.mesh.products["supply.suppliers"] = hidden
    caller = ws.access.caller(CONSUMER)
    try:
        for template in (
            "select * from range((select count(*) from supply.{}))",
            "select * from (pivot supply.{} on nation_key using count(*)) p",
        ):
            with pytest.raises(MeshkitError) as present:
                ws.access.query(caller, template.format("suppliers"))
            with pytest.raises(MeshkitError) as missing:
                ws.access.query(caller, template.format("supplierz"))
            assert str(present.value).replace("suppliers", "X") == str(missing.value).replace(
                "supplierz", "X"
            )
    finally:
        ws.mesh.products["supply.suppliers"] = product


def test_huge_ranges_end_at_the_row_limit_or_the_timeout(
    granted: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range of 10**15 rows returns `max_rows` at once; counting it, or a cross join of
    ranges, is cancelled by the query timeout, and the answer comes back within it."""
    access = granted.mesh.spec.access.model_copy(
        update={"query_timeout": timedelta(seconds=2), "max_rows": 50}
    )
    monkeypatch.setattr(
        granted.mesh, "spec", granted.mesh.spec.model_copy(update={"access": access})
    )
    caller = granted.access.caller(CONSUMER)
    result = granted.access.query(caller, "select * from range(1000000000000000)")
    assert result.table.num_rows == 50
    assert result.truncated
    for sql in (
        "select count(*) from range(1000000000000000)",
        "select count(*) from range(100000000) a, range(100000000) b",
        "select max(d) from range(timestamp '1970-01-01', timestamp '9999-01-01', "
        "interval 1 microsecond) t(d)",
        "pivot (select i % 7 as k from range(1000000000000) t(i)) on k using count(*)",
    ):
        started = time.monotonic()
        with pytest.raises(MeshkitError, match=r"cancelled after 2 s"):
            granted.access.query(caller, sql)
        assert time.monotonic() - started < 30  # the 2 s timeout, with room for a busy machine


def test_a_dynamic_pivot_runs_as_written() -> None:
    """DuckDB cannot serialize a PIVOT whose values come from the data (it runs as an ENUM of
    the values, then the query): the guard checks the text with `IN ('<probe>')` after each
    pivot column, but what runs is the query as written, one DuckDB statement."""
    checked = guard.check(f"pivot {C} on region, nation using count(*)", {C}, dialect="duckdb")
    sql = guard.render(checked, 10, {C})
    assert "IN (" not in sql
    assert "__meshkit_pivot_values__" not in sql
    assert statement_types(sql) == ["MULTI"]
