"""Hostile queries: for each, the answer equals the same query over a pre-masked copy of the
data, or the query is refused, and no error text carries a raw value.

The pre-masked copy is made here in Python (hashlib, string slicing), not with meshkit's mask
expressions, so a wrong mask in meshkit cannot agree with itself: the consumer (clearance
internal, region EUROPE) must see customer_name hashed, address redacted, phone with its last 4
digits, account_balance NULL, and only EUROPE's rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from access.conftest import CONSUMER, CUSTOMERS, NO_GRANT
from meshkit.engines.serving import DuckDBServing
from meshkit.errors import AccessDenied, MeshkitError, NotFoundError
from meshkit.tables.delta import list_files
from meshkit.workspace import Workspace

C = CUSTOMERS


def _raw(ws: Workspace, version: int | None = None) -> pa.Table:
    snapshot = ws.snapshot(CUSTOMERS, version)
    assert snapshot is not None
    return pa.concat_tables([pq.read_table(f) for f in list_files(snapshot.files)])


def _premasked(raw: pa.Table, key: str) -> pa.Table:
    rows = [r for r in raw.to_pylist() if r["region"] == "EUROPE"]
    for r in rows:
        r["customer_name"] = hashlib.sha256((key + r["customer_name"]).encode()).hexdigest()
        r["address"] = "***"
        r["phone"] = "*" * (len(r["phone"]) - 4) + r["phone"][-4:]
        r["account_balance"] = None
    schema = raw.schema
    for name in ("customer_name", "address", "phone"):
        schema = schema.set(schema.get_field_index(name), pa.field(name, pa.string()))
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture(scope="module")
def oracle(granted: Workspace) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("premasked", _premasked(_raw(granted), granted.access.hash_key))
    con.execute("CREATE SCHEMA customer")
    con.execute("CREATE TABLE customer.customers AS SELECT * FROM premasked")
    # the consumer's own domain (sales) is unmasked for it: the copy has it as published
    orders = granted.snapshot("sales.orders")
    assert orders is not None
    con.execute("CREATE SCHEMA sales")
    files = ", ".join(f"'{f}'" for f in list_files(orders.files))
    con.execute(f"CREATE TABLE sales.orders AS SELECT * FROM read_parquet([{files}])")
    return con


@pytest.fixture(scope="module")
def secrets_(granted: Workspace) -> list[str]:
    """Raw values of masked columns, and of rows the filter hides: none may ever be shown."""
    raw = _raw(granted).to_pylist()
    values = [r["customer_name"] for r in raw[:50]] + [r["phone"] for r in raw[:50]]
    values += [r["address"] for r in raw[:50]]
    return values


def _normal(table: pa.Table) -> list[tuple[Any, ...]]:
    def norm(v: Any) -> Any:
        if isinstance(v, float | Decimal):
            return round(float(v), 6)
        return v

    return sorted((tuple(norm(v) for v in row.values()) for row in table.to_pylist()), key=repr)


# Each query is answered by meshkit as the consumer and by DuckDB over the pre-masked copy;
# the answers must be equal (or both fail).
SAME = {
    "select-star": f"select * from {C}",
    "probe-raw-name": f"select count(*) from {C} where customer_name = 'Customer#000000001'",
    "probe-like": f"select count(*) from {C} where customer_name like 'Customer#%'",
    "group-by-masked": f"select customer_name, count(*) from {C} group by 1",
    "order-by-masked": f"select customer_key, phone from {C} order by phone, customer_key limit 20",
    "window-over-masked": f"select customer_key, row_number() over (partition by address order by phone, customer_key) from {C}",
    "window-lag": f"select customer_key, lag(customer_name) over (order by customer_key) from {C}",
    "subquery": f"select * from (select customer_key, phone from {C}) t where phone like '%1%'",
    "scalar-subquery": f"select (select max(customer_name) from {C})",
    "exists-probe": f"select count(*) from {C} a where exists (select 1 from {C} b where b.customer_name = 'Customer#000000002')",
    "in-probe": f"select count(*) from {C} where phone in ('27-918-335-1736', '13-764-279-3734')",
    "union": f"select customer_name from {C} union select address from {C}",
    "union-all-by-name": f"select phone as x from {C} union all by name select customer_name as x from {C}",
    "range-probe-balance": f"select count(*) from {C} where account_balance > 0",
    "range-probe-between": f"select count(*) from {C} where account_balance between -1000 and 10000",
    "min-max-masked": f"select min(account_balance), max(account_balance), min(phone), max(customer_name) from {C}",
    "length-oracle": f"select length(customer_name), length(address), count(*) from {C} group by 1, 2",
    "hash-probe": f"select count(*) from {C} where md5(customer_name) = md5('Customer#000000003')",
    "regexp-probe": f"select count(*) from {C} where regexp_matches(phone, '^2[0-9]-')",
    "substring-probe": f"select substr(phone, 1, 3), count(*) from {C} group by 1",
    "hidden-rows-count": f"select count(*) from {C} where region <> 'EUROPE'",
    "hidden-rows-or": f"select count(*) from {C} where region = 'ASIA' or 1 = 1",
    "region-groups": f"select region, nation, count(*) from {C} group by all",
    "divide-by-zero": f"select customer_key / 0 from {C} where customer_key < 5",
    "case-on-masked": f"select count(case when account_balance is null then 1 end) from {C}",
    "string-agg": f"select string_agg(phone, ',' order by phone) from {C}",
    "to-json-row": f"select to_json(c) from {C} c order by customer_key limit 5",
    "struct-pack": f"select struct_pack(n := customer_name, p := phone) from {C} order by customer_key limit 3",
    "unnest-masked": f"select unnest([customer_name, address]) from {C} order by 1 limit 5",
    "grouping-sets": f"select region, market_segment, count(*) from {C} group by grouping sets ((region), (market_segment))",
    "qualify": f"select customer_key from {C} qualify row_number() over (order by phone desc, customer_key) <= 3",
    "distinct-on": f"select distinct on (address) address, phone from {C} order by address, phone",
    "join-own-domain": f"select count(*), count(distinct o.customer_key) from {C} c join sales.orders o using (customer_key)",
    "self-join-on-masked": f"select count(*) from {C} a join {C} b on a.customer_name = b.customer_name",
    "cte": f"with x as (select phone from {C}) select count(*) from x where phone like '%5'",
    "try-cast": f"select try_cast(customer_name as integer), count(*) from {C} group by 1",
    "cast-error": f"select cast(customer_name as integer) from {C}",
    "overflow": f"select sum(customer_key * 9223372036854775807) from {C}",
    "approx-stats": f"select approx_count_distinct(customer_name), count(distinct phone) from {C}",
    "histogram": f"select histogram(substr(phone, -2)) from {C}",
    # table functions with constant arguments, and PIVOT/UNPIVOT, over the masked views
    "range-join": f"select r.i, c.customer_name, c.phone from range(5) r(i) join {C} c on c.customer_key % 5 = r.i",
    "unnest-cross-join": f"select u.x, count(*), min(phone) from {C}, unnest(['a', 'b']) u(x) group by 1",
    "generate-series-probe": f"select g.n, count(c.customer_key) from generate_series(0, 3) g(n) left join {C} c on c.account_balance > g.n * 1000 group by 1",
    "pivot-statement": f"pivot (select region, market_segment from {C}) on market_segment using count(*) group by region",
    "pivot-in-subquery": f"select * from (pivot (select region from {C}) on region using count(*)) p",
    "pivot-hidden-region": f"select * from (pivot (select region from {C}) on region in ('ASIA', 'EUROPE') using count(*)) p",
    "pivot-masked-column": f"select * from (pivot (select nation, address from {C}) on address using count(*)) p",
    "pivot-cte": f"with x as (select nation, market_segment from {C}) select * from (pivot x on market_segment using count(*) group by nation) p",
    "pivot-standard-form": f"select * from (select region, account_balance from {C}) pivot (count(*) for region in ('ASIA', 'EUROPE'))",
    "unpivot-masked": f"select k, count(distinct v) from (unpivot (select customer_name, address, phone from {C}) on customer_name, address, phone into name k value v) u group by k",
    "unpivot-statement": f"unpivot (select customer_key, customer_name, phone from {C}) on customer_name, phone into name k value v",
}

# Refused outright, whoever asks.
REFUSED = {
    "read-csv": "select * from read_csv('/etc/passwd')",
    "file-as-table": "select * from '/etc/passwd'",
    "parquet-of-warehouse": "select * from read_parquet('warehouse/customer/customers/**/*.parquet')",
    "glob": "select * from glob('/*')",
    "attach": "attach '/tmp/x.duckdb' as x",
    "copy": f"copy (select * from {C}) to '/tmp/leak.csv'",
    "install": "install httpfs",
    "load": "load httpfs",
    "pragma": "pragma database_list",
    "set": "set enable_external_access = true",
    "system-catalog": "select * from information_schema.tables",
    "duckdb-settings": "select * from duckdb_settings()",
    "duckdb-tables": "select * from duckdb_tables()",
    "getenv": "select getenv('HOME')",
    "current-setting": "select current_setting('allowed_paths')",
    "explain": f"explain select * from {C}",
    "explain-analyze": f"explain analyze select customer_name from {C}",
    "describe": f"describe {C}",
    "summarize": f"summarize {C}",
    "error-oracle": f"select count(*) from {C} where case when region = 'ASIA' then error('x') end",
    "two-statements": f"select 1; select * from {C}",
    "cte-shadows-product": "with customers as (select 1 as customer_name) select * from customers",
    "cte-shadows-domain": "with customer as (select 1) select * from customer",
    "unknown-product": "select * from hr.salaries",
    "catalog-qualified": f"select * from memory.{C}",
    "delete": f"delete from {C}",
    "create": "create table x as select 1",
    "query-function": "select * from query('select 1')",
    # found in review: quoted names, LATERAL table functions, CTE names out of scope, macros
    "lateral-quoted-query": f"""select q.* from (select 1 from {C} limit 1) c,
        lateral "query"('select * from read_parquet(current_setting(''allowed_paths''))') q""",
    "quoted-current-setting": """select "current_setting"('allowed_paths')""",
    "quoted-error": f"""select count(*) from {C} where case when region = 'ASIA' then "error"('x') end""",
    "quoted-stats": f"""select "stats"(nation) from {C}""",
    "mixed-case-getenv": "select GetEnv('HOME')",
    "lateral-duckdb-settings": f'select * from {C} c, lateral "duckdb_settings"() s',
    "lateral-glob": f"select * from {C} c, lateral glob('/*') g",
    "cte-out-of-scope-system-view": f"""select (select count(*) from {C}) c, sql from duckdb_views
        where exists (with duckdb_views as (select 1) select 1 from duckdb_views)""",
    "cte-out-of-scope-file": f"""select * from "/etc/passwd"
        where exists (with "/etc/passwd" as (select 1) select 1) and (select count(*) from {C}) > 0""",
    "pg-get-viewdef": f"select pg_get_viewdef(1) from {C}",
    "current-query": "select current_query()",
    "sleep": f"select sleep_ms(10) from {C}",
    "unterminated-string": "select 'abc",
    "deep-nesting": "select " + "(" * 3000 + "1" + ")" * 3000,
    # found in the second review: text sqlglot prints differently from what it parsed
    "date-add-unit-injection": f"""select (select count(*) from {C}) as n, date_add(current_date, 1,
        'day, r.customer_name from read_parquet(current_setting(''allowed_paths'')) AS r')""",
    "struct-insert-injection": f"""select (select count(*) from {C}) as n, object_insert({{'a': 1}},
        'b := 1) AS s, r.* FROM read_parquet(current_setting(''allowed_paths'')) AS r) AS q --', 2)""",
    "collate-injection": f"""select (select count(*) from {C}) as n, collate('x',
        'nocase, r.* FROM read_parquet(current_setting(''allowed_paths'')) AS r')""",
    "cast-type-injection": f"select (select count(*) from {C}) as n, 1::"
    + "\"oid) AS k, r.* FROM read_parquet(current_setting('allowed_paths')) AS r WHERE (TRUE\"",
    "anonymous-agg-func": f"select anonymous_agg_func('current_setting', 'allowed_paths') from {C}",
    "second-statement": f"""select (select count(*) from {C}) as n, object_insert({{'a': 1}},
        'b := 1)) AS q; SELECT current_setting(''allowed_paths'') AS p --', 2)""",
    "recursive-cte-anchor": f"""with recursive duckdb_views as (select * from duckdb_views
        union all select * from duckdb_views where false)
        select sql from duckdb_views where (select count(*) from {C}) > 0""",
    "summarize-file-subquery": f"select * from (summarize '/etc/passwd') s where (select count(*) from {C}) > 0",
    "json-serialize-plan": f"select json_serialize_plan('select current_setting(''allowed_paths'')') from {C}",
    "version": "select version()",
    "quoted-dotted-name": f'select count(*) from "{C}"',
    "at-version": f"select * from {C} at (version => 0)",
    # found in the third review
    "cte-prefixed-path": f"""select object_insert({{'a': 1}}, 'b := 1) AS s, customer_name FROM
        "__meshkit_cte_1/../warehouse/customer/customers/data/x/data_0.parquet") AS q --', 2)
        from {C}""",
    "row-limit-escape": f"""select object_insert({{'a': 1}}, 'b := 1) AS s FROM {C}) AS q --', 2)
        as z from {C}""",
    "session-names": f'select "current_schema", "current_catalog", "user" from {C}',
    "own-cte-with-reserved-name": f"select * from __meshkit_cte_1 where (select count(*) from {C}) > 0",
    "window-over-setting": f"select current_setting('threads') over () from {C}",
    "catalog-probe": f"select in_search_path('main', 'x') from {C}",
}


def test_hashed_values_cannot_be_recomputed_by_a_consumer(granted: Workspace) -> None:
    """The hash mask is keyed: hashing a guessed name does not give the masked value."""
    guess = f"""select count(*) filter (where customer_name = sha256('Customer#' ||
        lpad(customer_key::varchar, 9, '0'))) as found, count(*) as total from {C}"""
    row = granted.access.query(granted.access.caller(CONSUMER), guess).table.to_pylist()[0]
    assert row["total"] > 0
    assert row["found"] == 0


@pytest.mark.parametrize("sql", SAME.values(), ids=SAME.keys())
def test_hostile_query_sees_only_masked_rows(
    granted: Workspace, oracle: duckdb.DuckDBPyConnection, secrets_: list[str], sql: str
) -> None:
    caller = granted.access.caller(CONSUMER)
    try:
        expected: list[tuple[Any, ...]] | None = _normal(oracle.sql(sql).to_arrow_table())
    except duckdb.Error:
        expected = None
    if expected is None:
        with pytest.raises(MeshkitError) as caught:
            granted.access.query(caller, sql)
        assert not any(s in str(caught.value) for s in secrets_)
        return
    got = granted.access.query(caller, sql).table
    assert _normal(got) == expected
    text = str(got.to_pylist())
    assert not any(s in text for s in secrets_)


@pytest.mark.parametrize("sql", REFUSED.values(), ids=REFUSED.keys())
def test_hostile_statement_is_refused(granted: Workspace, sql: str) -> None:
    with pytest.raises(MeshkitError) as caught:
        granted.access.query(granted.access.caller(CONSUMER), sql)
    assert isinstance(caught.value, AccessDenied | MeshkitError)
    assert (
        "/etc/passwd" not in str(caught.value)
        or "not a data product" in str(caught.value)
        or "no access" in str(caught.value)
    )


def test_the_local_operator_is_refused_the_same_statements(granted: Workspace) -> None:
    """The lock-down is not a consumer privilege: the operator's queries go through it too."""
    for sql in (
        "select * from read_csv('/etc/passwd')",
        "attach '/tmp/x.db'",
        "select getenv('HOME')",
    ):
        with pytest.raises(MeshkitError):
            granted.query(sql)


def test_time_travel_applies_the_same_masks_and_filter(
    granted: Workspace, oracle: duckdb.DuckDBPyConnection
) -> None:
    caller = granted.access.caller(CONSUMER)
    old = granted.access.query(caller, f"select * from {C}", version=0).table
    con = duckdb.connect()
    con.register("premasked", _premasked(_raw(granted, 0), granted.access.hash_key))
    assert _normal(old) == _normal(con.sql("select * from premasked").to_arrow_table())
    with pytest.raises(NotFoundError):
        granted.access.query(caller, f"select * from {C}", as_of=datetime(2000, 1, 1, tzinfo=UTC))


def test_without_a_grant_nothing_is_read(granted: Workspace) -> None:
    with pytest.raises(AccessDenied, match="no grant"):
        granted.access.query(granted.access.caller(NO_GRANT), f"select count(*) from {C}")


def test_a_missing_caller_attribute_refuses_the_query(granted: Workspace) -> None:
    """platform-team has a grant but no `region`: the row filter cannot be evaluated."""
    ws = granted
    admin = ws.access.caller("platform-team@example.com")
    request = ws.access.request(
        admin, C, purpose="platform capacity planning", until=datetime(2099, 1, 1, tzinfo=UTC)
    )
    ws.access.approve(ws.access.caller("maria.gonzalez@example.com"), request.id)
    with pytest.raises(AccessDenied, match=r"caller\.region"):
        ws.access.query(admin, f"select count(*) from {C}")


def test_rows_are_capped_and_every_query_is_audited(granted: Workspace) -> None:
    caller = granted.access.caller(CONSUMER)
    result = granted.access.query(caller, f"select * from {C}", max_rows=7)
    assert result.table.num_rows == 7
    assert result.truncated
    with pytest.raises(AccessDenied):
        granted.access.query(caller, "select * from read_csv('/etc/passwd')")
    entries = [e for e in granted.catalog.audit.entries() if e.action == "query"]
    decisions = [e.detail["decision"] for e in entries[-2:]]
    assert decisions == ["allowed", "refused"]
    assert entries[-2].detail["rows"] == 7
    assert set(entries[-2].detail["masked"][C]) == {
        "customer_name",
        "address",
        "phone",
        "account_balance",
    }
    assert granted.verify_audit().ok


def test_a_column_needing_a_mask_without_one_refuses(granted: Workspace) -> None:
    """Fail-closed: a column the caller may not see as is, with no masking rule."""
    from meshkit.access.masking import product_view
    from meshkit.governance.engine import column_classes

    product = granted.product(C)
    columns = [
        c.model_copy(update={"masking": None}) if c.name == "address" else c
        for c in product.spec.schema_.columns
    ]
    spec = product.spec.model_copy(
        update={"schema_": product.spec.schema_.model_copy(update={"columns": columns})}
    )
    stripped = dataclasses.replace(product, spec=spec)
    with pytest.raises(AccessDenied, match="no masking rule"):
        product_view(
            granted.access.caller(CONSUMER),
            stripped,
            column_classes(granted.mesh, product),
            None,
            dialect="duckdb",
        )


def test_duckdb_itself_refuses_files_even_past_the_guard(granted: Workspace) -> None:
    """Defence in depth: SQL that skipped the AST guard still cannot read a file, attach,
    install or change a setting in the query's DuckDB."""

    from meshkit.access import query
    from meshkit.access.masking import product_view
    from meshkit.governance.engine import column_classes

    caller = granted.access.caller(CONSUMER)
    product = granted.product(C)
    snapshot = granted.snapshot(C)
    assert snapshot is not None
    view = product_view(
        caller, product, column_classes(granted.mesh, product), None, dialect="duckdb"
    )
    types = {c.name: c.type for c in product.spec.schema_.columns}
    source = query.Source(
        view=view,
        snapshot=snapshot,
        sql=query.view_sql(view, snapshot, types, serving=DuckDBServing),
    )
    for sql in (
        "select * from read_csv('/etc/passwd')",
        "select * from read_text('/etc/hostname')",
        f"select * from read_parquet('{list_files(snapshot.files)[0]}/../../*')",
        "select * from glob('/tmp/*')",
    ):
        with pytest.raises(MeshkitError):
            query.run(sql, [source], serving=DuckDBServing, max_rows=10, timeout_s=10)


def test_a_slow_query_is_cancelled(granted: Workspace) -> None:

    from meshkit.access import query

    with pytest.raises(MeshkitError, match=r"cancelled after 0\.5 s"):
        query.run(
            "select count(*) from range(100000000000) a",
            [],
            serving=DuckDBServing,
            max_rows=10,
            timeout_s=0.5,
        )


def test_hidden_products_answer_like_missing_ones_in_queries(granted: Workspace) -> None:
    """No oracle: CTE names, denied functions and version checks on a hidden product answer
    as for a product that does not exist."""
    import dataclasses as dc

    ws = granted
    product = ws.mesh.products["supply.suppliers"]
    hidden = dc.replace(
        product, spec=product.spec.model_copy(update={"classification": "restricted"})
    )
    ws.mesh.products["supply.suppliers"] = hidden
    caller = ws.access.caller(CONSUMER)
    try:
        for present, missing in [
            (
                "select getenv('x') from supply.suppliers",
                "select getenv('x') from supply.supplierz",
            ),
            ("select 1 from supply.suppliers", "select 1 from supply.supplierz"),
        ]:
            with pytest.raises(MeshkitError) as a:
                ws.access.query(caller, present)
            with pytest.raises(MeshkitError) as b:
                ws.access.query(caller, missing)
            assert str(a.value).replace("suppliers", "X") == str(b.value).replace("supplierz", "X")
        # a CTE may carry a hidden product's name: refusing it would reveal the product
        table = ws.access.query(
            caller, "with suppliers as (select 1 as x) select x from suppliers"
        ).table
        assert table.num_rows == 1
    finally:
        ws.mesh.products["supply.suppliers"] = product


def test_a_query_that_breaks_the_parser_is_audited_and_refused(granted: Workspace) -> None:
    caller = granted.access.caller(CONSUMER)
    for sql in ("select 'abc", "select " + "(" * 3000 + "1" + ")" * 3000):
        with pytest.raises(MeshkitError):
            granted.access.query(caller, sql)
        last = granted.catalog.audit.entries()[-1]
        assert last.action == "query"
        assert last.detail["decision"] == "refused"
