"""Column-level lineage of SQL transforms, and the classification that flows along it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshkit.errors import MeshkitError
from meshkit.governance import lineage as governed
from meshkit.governance.lineage import ColumnClass, ColumnSource, LineageCache
from meshkit.specs.loader import load_mesh
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification
from meshkit.specs.product import DataProductSpec
from meshkit.sql import lineage as sql_lineage

from conftest import product_spec

DIALECT = "duckdb"


def column_lineage(sql: str, inputs: Any, **options: Any) -> Any:
    return sql_lineage.column_lineage(sql, inputs, dialect=DIALECT, **options)


def product_lineage(product: Product, upstream: Any) -> Any:
    return governed.product_lineage(product, upstream, dialect=DIALECT)


def propagate(product: Product, upstream: Any) -> Any:
    return governed.propagate(product, upstream, dialect=DIALECT)


INPUTS = {
    "customers": ["customer_key", "customer_name", "email", "region", "segment"],
    "orders": ["order_key", "customer_key", "amount", "status", "order_date"],
    "contacts": ["customer_key", "email", "phone"],
}

# (case id, SQL, {output column: {"port.column", ...}}): the dict's order is the output order
GOLDEN: list[tuple[str, str, dict[str, set[str]]]] = [
    (
        "copy",
        "SELECT customer_key, customer_name FROM customers",
        {"customer_key": {"customers.customer_key"}, "customer_name": {"customers.customer_name"}},
    ),
    (
        "rename",
        "SELECT customer_name AS buyer FROM customers",
        {"buyer": {"customers.customer_name"}},
    ),
    (
        "table alias",
        "SELECT c.customer_name AS buyer, c.region FROM customers AS c",
        {"buyer": {"customers.customer_name"}, "region": {"customers.region"}},
    ),
    (
        "same column name in two joined inputs",
        "SELECT c.email AS primary_email, k.email AS contact_email, k.customer_key "
        "FROM customers AS c JOIN contacts AS k ON c.customer_key = k.customer_key",
        {
            "primary_email": {"customers.email"},
            "contact_email": {"contacts.email"},
            "customer_key": {"contacts.customer_key"},
        },
    ),
    (
        "unqualified names in a join resolve to the only input that has them",
        "SELECT customer_name, amount FROM customers c JOIN orders o "
        "ON o.customer_key = c.customer_key",
        {"customer_name": {"customers.customer_name"}, "amount": {"orders.amount"}},
    ),
    (
        "USING key is coalesced from both sides",
        "SELECT customer_key, amount FROM customers JOIN orders USING (customer_key)",
        {
            "customer_key": {"customers.customer_key", "orders.customer_key"},
            "amount": {"orders.amount"},
        },
    ),
    (
        "WHERE and JOIN columns only filter",
        "SELECT c.customer_name FROM customers c JOIN orders o ON o.customer_key = c.customer_key "
        "WHERE o.status = 'open' AND c.region = 'EU'",
        {"customer_name": {"customers.customer_name"}},
    ),
    (
        "alias shadowing an input column name",
        "SELECT email AS customer_name, customer_name AS email FROM customers",
        {"customer_name": {"customers.email"}, "email": {"customers.customer_name"}},
    ),
    (
        "an input column wins over a same-named alias, as in DuckDB",
        "SELECT upper(region) AS segment, segment AS raw_segment FROM customers",
        {"segment": {"customers.region"}, "raw_segment": {"customers.segment"}},
    ),
    (
        "lateral alias reference",
        "SELECT amount * 2 AS doubled, doubled + 1 AS plus_one FROM orders",
        {"doubled": {"orders.amount"}, "plus_one": {"orders.amount"}},
    ),
    (
        "CTE that renames",
        "WITH c AS (SELECT customer_key AS id, customer_name AS who FROM customers) "
        "SELECT id, who AS name FROM c",
        {"id": {"customers.customer_key"}, "name": {"customers.customer_name"}},
    ),
    (
        "chained CTEs",
        "WITH a AS (SELECT customer_key, amount FROM orders), "
        "b AS (SELECT customer_key AS k, amount * 1.1 AS gross FROM a) "
        "SELECT k, gross FROM b",
        {"k": {"orders.customer_key"}, "gross": {"orders.amount"}},
    ),
    (
        "CTE shadowing an input port's name",
        "WITH orders AS (SELECT customer_key, email AS amount FROM contacts) "
        "SELECT amount FROM orders",
        {"amount": {"contacts.email"}},
    ),
    (
        "nested subqueries with aliases",
        "SELECT t.n FROM (SELECT s.nm AS n FROM "
        "(SELECT customer_name AS nm FROM customers) AS s) AS t",
        {"n": {"customers.customer_name"}},
    ),
    (
        "correlated scalar subquery: its value, not its WHERE",
        "SELECT c.customer_key, (SELECT sum(o.amount) FROM orders o "
        "WHERE o.customer_key = c.customer_key) AS total FROM customers c",
        {"customer_key": {"customers.customer_key"}, "total": {"orders.amount"}},
    ),
    (
        "IN subquery in WHERE only filters",
        "SELECT customer_name FROM customers WHERE customer_key IN "
        "(SELECT customer_key FROM orders WHERE status = 'paid')",
        {"customer_name": {"customers.customer_name"}},
    ),
    (
        "UNION ALL branches with different sources, named by the first",
        "SELECT customer_key, email AS reach FROM customers "
        "UNION ALL SELECT customer_key, phone FROM contacts",
        {
            "customer_key": {"customers.customer_key", "contacts.customer_key"},
            "reach": {"customers.email", "contacts.phone"},
        },
    ),
    (
        "UNION with a literal branch",
        "SELECT email AS contact FROM customers UNION SELECT 'none'",
        {"contact": {"customers.email"}},
    ),
    (
        "UNION ALL BY NAME matches columns by name",
        "SELECT customer_key AS k, email AS reach FROM customers "
        "UNION ALL BY NAME SELECT phone AS reach, customer_key AS k, 1 AS extra FROM contacts",
        {
            "k": {"customers.customer_key", "contacts.customer_key"},
            "reach": {"customers.email", "contacts.phone"},
            "extra": set(),
        },
    ),
    (
        "NATURAL JOIN coalesces the shared columns",
        "SELECT email, phone FROM customers NATURAL JOIN contacts",
        {"email": {"customers.email", "contacts.email"}, "phone": {"contacts.phone"}},
    ),
    (
        "struct values and their fields",
        "SELECT s AS packed, s.n AS field FROM "
        "(SELECT {'n': customer_name, 'e': email} AS s FROM customers)",
        {
            "packed": {"customers.customer_name", "customers.email"},
            # a field of a computed struct is taken to come from the whole struct
            "field": {"customers.customer_name", "customers.email"},
        },
    ),
    (
        "EXCEPT: the right side only filters",
        "SELECT customer_key FROM customers EXCEPT SELECT customer_key FROM orders",
        {"customer_key": {"customers.customer_key"}},
    ),
    (
        "CASE conditions and results",
        "SELECT CASE WHEN status = 'paid' THEN amount ELSE 0 END AS paid_amount FROM orders",
        {"paid_amount": {"orders.status", "orders.amount"}},
    ),
    (
        "casts and functions",
        "SELECT CAST(customer_key AS VARCHAR) AS key_text, lower(trim(email)) AS email, "
        "coalesce(phone, email) AS reach FROM contacts",
        {
            "key_text": {"contacts.customer_key"},
            "email": {"contacts.email"},
            "reach": {"contacts.phone", "contacts.email"},
        },
    ),
    (
        "string concatenation",
        "SELECT customer_name || ' <' || email || '>' AS display FROM customers",
        {"display": {"customers.customer_name", "customers.email"}},
    ),
    (
        "arithmetic across a join",
        "SELECT o.amount + length(c.region) AS score "
        "FROM orders o JOIN customers c USING (customer_key)",
        {"score": {"orders.amount", "customers.region"}},
    ),
    (
        "GROUP BY with aggregates",
        "SELECT region, count(*) AS n, count(email) AS with_email, "
        "sum(length(customer_name)) AS name_length, string_agg(customer_name, ', ') AS names "
        "FROM customers GROUP BY region",
        {
            "region": {"customers.region"},
            "n": set(),
            "with_email": {"customers.email"},
            "name_length": {"customers.customer_name"},
            "names": {"customers.customer_name"},
        },
    ),
    (
        "GROUP BY key that is not selected, HAVING",
        "SELECT count(DISTINCT customer_key) AS buyers, max(amount) AS biggest FROM orders "
        "GROUP BY status HAVING sum(amount) > 100",
        {"buyers": {"orders.customer_key"}, "biggest": {"orders.amount"}},
    ),
    (
        "window functions: only the value arguments",
        "SELECT order_key, sum(amount) OVER (PARTITION BY customer_key ORDER BY order_date) "
        "AS running, row_number() OVER (PARTITION BY customer_key ORDER BY order_date) AS rn "
        "FROM orders",
        {"order_key": {"orders.order_key"}, "running": {"orders.amount"}, "rn": set()},
    ),
    (
        "QUALIFY only filters",
        "SELECT order_key FROM orders "
        "QUALIFY row_number() OVER (PARTITION BY customer_key ORDER BY amount DESC) = 1",
        {"order_key": {"orders.order_key"}},
    ),
    (
        "an aggregate's ORDER BY and FILTER only order and filter",
        "SELECT string_agg(email, ',' ORDER BY customer_name) AS emails, "
        "count(*) FILTER (WHERE region = 'EU') AS in_eu FROM customers",
        {"emails": {"customers.email"}, "in_eu": set()},
    ),
    (
        "WITHIN GROUP: the ordered column is the value",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM orders",
        {"median": {"orders.amount"}},
    ),
    (
        "count(*) and literals have no sources",
        "SELECT count(*) AS n, 1 AS one, 'x' AS letter, current_date AS today FROM orders",
        {"n": set(), "one": set(), "letter": set(), "today": set()},
    ),
    (
        "SELECT *",
        "SELECT * FROM contacts",
        {
            "customer_key": {"contacts.customer_key"},
            "email": {"contacts.email"},
            "phone": {"contacts.phone"},
        },
    ),
    (
        "t.* next to a column",
        "SELECT k.*, c.region FROM contacts AS k JOIN customers AS c USING (customer_key)",
        {
            "customer_key": {"contacts.customer_key"},
            "email": {"contacts.email"},
            "phone": {"contacts.phone"},
            "region": {"customers.region"},
        },
    ),
    (
        "* EXCLUDE",
        "SELECT * EXCLUDE (email, phone) FROM contacts",
        {"customer_key": {"contacts.customer_key"}},
    ),
    (
        "* REPLACE",
        "SELECT * REPLACE (md5(email) AS email, phone AS customer_key) FROM contacts",
        {
            "customer_key": {"contacts.phone"},
            "email": {"contacts.email"},
            "phone": {"contacts.phone"},
        },
    ),
    (
        "SELECT DISTINCT and DISTINCT ON",
        "SELECT DISTINCT ON (customer_key) customer_key, amount FROM orders "
        "ORDER BY customer_key, order_date DESC",
        {"customer_key": {"orders.customer_key"}, "amount": {"orders.amount"}},
    ),
    (
        "SELECT DISTINCT through a star over a CTE",
        "WITH r AS (SELECT DISTINCT region AS area FROM customers) SELECT * FROM r",
        {"area": {"customers.region"}},
    ),
    (
        "lambda parameters are not columns",
        "SELECT list_transform([amount], x -> x * 2) AS doubled FROM orders",
        {"doubled": {"orders.amount"}},
    ),
    (
        "UNNEST",
        "SELECT unnest(string_split(email, ',')) AS address FROM customers",
        {"address": {"customers.email"}},
    ),
    (
        "a star as an argument is every column",
        "SELECT struct_pack(*) AS packed FROM contacts",
        {"packed": {"contacts.customer_key", "contacts.email", "contacts.phone"}},
    ),
    (
        "a bare table alias is the whole row",
        "SELECT c AS whole FROM contacts AS c",
        {"whole": {"contacts.customer_key", "contacts.email", "contacts.phone"}},
    ),
    (
        "recursive CTE",
        "WITH RECURSIVE r AS (SELECT customer_key AS k FROM customers "
        "UNION ALL SELECT k + 1 FROM r WHERE k < 3) SELECT k FROM r",
        {"k": {"customers.customer_key"}},
    ),
    (
        "names are case-insensitive; outputs keep their spelling",
        "SELECT Customer_Name AS Who, C.REGION FROM CUSTOMERS AS c",
        {"Who": {"customers.customer_name"}, "region": {"customers.region"}},
    ),
]


def _render(lineage: dict[str, frozenset[ColumnSource]]) -> dict[str, set[str]]:
    return {name: {str(source) for source in sources} for name, sources in lineage.items()}


@pytest.mark.parametrize(("sql", "expected"), [pytest.param(s, e, id=i) for i, s, e in GOLDEN])
def test_golden_lineage(sql: str, expected: dict[str, set[str]]) -> None:
    result = column_lineage(sql, INPUTS)
    assert _render(result) == expected
    assert list(result) == list(expected)  # output order


def test_golden_table_is_large_enough() -> None:
    assert len(GOLDEN) >= 25


def test_sources_are_typed_and_spelled_as_the_inputs_declare() -> None:
    result = column_lineage("SELECT name AS n FROM people", {"people": ["Name"]})
    assert result == {"n": frozenset({ColumnSource(port="people", column="Name")})}
    assert str(ColumnSource("people", "Name")) == "people.Name"


def test_an_unaliased_column_is_named_as_its_input_declares_it() -> None:
    result = column_lineage("SELECT NAME FROM people", {"people": ["Name"]})
    assert list(result) == ["Name"]


def test_outputs_with_the_same_name_are_merged() -> None:
    result = column_lineage("SELECT email AS x, phone AS x FROM contacts", INPUTS)
    assert _render(result) == {"x": {"contacts.email", "contacts.phone"}}


def test_results_are_cached_but_callers_get_their_own_dict() -> None:
    cache = LineageCache()
    first = column_lineage("SELECT email FROM contacts", INPUTS, cache=cache)
    first["email"] = frozenset()
    again = column_lineage("SELECT email FROM contacts", INPUTS, cache=cache)
    assert _render(again) == {"email": {"contacts.email"}}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param("SELEC email FROM contacts", "does not parse", id="unparseable"),
        pytest.param("SELECT email FROM contacts WHERE (", "does not parse", id="unbalanced"),
        pytest.param("SELECT 1; SELECT 2", "exactly one query", id="two statements"),
        pytest.param("CREATE TABLE t AS SELECT 1", "exactly one query", id="not a query"),
        pytest.param("", "exactly one query", id="empty"),
        pytest.param("SELECT nope FROM contacts", "unknown column 'nope'", id="unknown column"),
        pytest.param("SELECT c.nope FROM contacts AS c", "nope", id="unknown qualified column"),
        pytest.param(
            "SELECT email FROM contacts WHERE nope > 1",
            "unknown column 'nope'",
            id="unknown column in WHERE",
        ),
        pytest.param(
            "SELECT t.zz FROM (SELECT email FROM contacts) AS t",
            "Unknown column: zz",
            id="unknown column of a subquery",
        ),
        pytest.param("SELECT x.email FROM contacts", "unknown table or alias", id="bad alias"),
        pytest.param("SELECT a FROM audit_log", "not an input port", id="unknown table"),
        pytest.param(
            "SELECT email FROM customers JOIN contacts USING (customer_key)",
            "ambiguous",
            id="ambiguous column",
        ),
        pytest.param(
            "SELECT email, phone FROM contacts UNION SELECT email FROM customers",
            "UNION",
            id="union arity",
        ),
        pytest.param("SELECT COLUMNS('e.*') FROM contacts", "COLUMNS", id="COLUMNS(...)"),
        pytest.param("SELECT * LIKE 'e%' FROM contacts", "star pattern", id="star LIKE"),
        pytest.param(
            "SELECT * FROM orders PIVOT (sum(amount) FOR status IN ('a', 'b'))",
            "PIVOT",
            id="PIVOT",
        ),
    ],
)
def test_errors_are_meshkit_errors_with_hints(sql: str, message: str) -> None:
    with pytest.raises(MeshkitError, match=message) as raised:
        column_lineage(sql, INPUTS)
    assert raised.value.hint


def test_unknown_column_hint_lists_what_the_input_has() -> None:
    with pytest.raises(MeshkitError) as raised:
        column_lineage("SELECT nope FROM contacts", INPUTS)
    assert raised.value.hint == "input 'contacts' has: customer_key, email, phone"


# ------------------------------------------------------------------------- opaque inputs


def test_opaque_inputs_are_taken_on_trust() -> None:
    result = column_lineage(
        "SELECT lower(work_email) AS work_email, split_part(work_email, '@', 2) AS domain, "
        "k.score, region FROM crm AS k JOIN customers AS c ON c.customer_key = k.id",
        INPUTS,
        opaque=["crm"],
    )
    assert _render(result) == {
        "work_email": {"crm.work_email"},
        "domain": {"crm.work_email"},
        "score": {"crm.score"},
        "region": {"customers.region"},  # a known input that has the name wins
    }


def test_a_star_over_an_opaque_input_yields_the_expected_columns() -> None:
    sql = "SELECT * EXCLUDE (secret) FROM raw"
    assert column_lineage(sql, {}, opaque=["raw"]) == {}
    result = column_lineage(sql, {}, opaque=["raw"], expected=["id", "secret", "Amount"])
    assert _render(result) == {"id": {"raw.id"}, "Amount": {"raw.Amount"}}


def test_a_star_over_known_and_opaque_inputs() -> None:
    result = column_lineage(
        "SELECT * FROM contacts JOIN raw ON raw.id = contacts.customer_key",
        INPUTS,
        opaque=["raw"],
        expected=["email", "score"],
    )
    assert _render(result) == {
        "customer_key": {"contacts.customer_key"},
        "email": {"contacts.email"},
        "phone": {"contacts.phone"},
        "score": {"raw.score"},
    }


def test_opaque_columns_flow_through_ctes() -> None:
    result = column_lineage(
        "WITH x AS (SELECT * FROM raw) SELECT t.total * 2 AS doubled FROM x AS t",
        {},
        opaque=["raw"],
    )
    assert _render(result) == {"doubled": {"raw.total"}}


def test_table_functions_read_no_input_port() -> None:
    result = column_lineage("SELECT i AS n FROM range(3) AS t(i)", {})
    assert _render(result) == {"n": set()}


# ------------------------------------------------------------------------------ products


def _product(
    domain: str,
    name: str,
    columns: list[dict[str, Any]],
    *,
    inputs: list[dict[str, Any]] | None = None,
    sql: str | None = None,
    python: bool = False,
    classification: str = "internal",
) -> Product:
    transform = {"python": "transform.py:build"} if python else {"sql": "transform.sql"}
    spec = DataProductSpec.model_validate(
        product_spec(
            name,
            domain=domain,
            classification=classification,
            inputs=inputs or [{"name": "raw", "file": "data/raw.parquet"}],
            transform=transform,
            schema={"columns": columns},
        )
    )
    return Product(
        file=Path(f"domains/{domain}/products/{name}/dataproduct.yaml"),
        raw=None,  # type: ignore[arg-type]  # unused by lineage
        spec=spec,
        domain=domain,
        transform_text=sql,
    )


CUSTOMERS = _product(
    "customer",
    "customers",
    [
        {"name": "customer_key", "type": "bigint"},
        {"name": "customer_name", "type": "varchar", "classification": "confidential", "pii": True},
        {"name": "email", "type": "varchar", "classification": "confidential", "pii": True},
        {"name": "tax_id", "type": "varchar", "classification": "restricted", "pii": True},
        {"name": "region", "type": "varchar", "classification": "public"},
    ],
    sql="SELECT * FROM raw",
)
ORDERS = _product(
    "sales",
    "orders",
    [
        {"name": "order_key", "type": "bigint"},
        {"name": "customer_key", "type": "bigint"},
        {"name": "amount", "type": "double"},
    ],
    sql="SELECT * FROM raw",
)
UPSTREAM = {CUSTOMERS.id: CUSTOMERS, ORDERS.id: ORDERS}
PORTS = [
    {"name": "customers", "product": "customer.customers"},
    {"name": "orders", "product": "sales.orders"},
]


def _one(sql: str, column: dict[str, Any], **kwargs: Any) -> ColumnClass:
    """The class of one declared column computed by `sql`."""
    product = _product("d", "report", [column], inputs=PORTS, sql=sql, **kwargs)
    return propagate(product, UPSTREAM)[column["name"]]


PII_NAME = ColumnClass(
    Classification.CONFIDENTIAL, True, ("customer.customers.customer_name",), False
)


def test_copy_inherits_pii_and_classification() -> None:
    col = {"name": "customer_name", "type": "varchar"}
    assert _one("SELECT customer_name FROM customers", col) == PII_NAME


def test_rename_inherits() -> None:
    col = {"name": "buyer", "type": "varchar"}
    assert _one("SELECT customer_name AS buyer FROM customers", col) == PII_NAME


def test_concatenation_inherits_from_the_sensitive_part_only() -> None:
    col = {"name": "label", "type": "varchar"}
    sql = "SELECT customer_name || ' (' || region || ')' AS label FROM customers"
    assert _one(sql, col) == PII_NAME  # region is public: it imposes nothing


def test_derived_value_inherits() -> None:
    col = {"name": "email_length", "type": "bigint"}
    result = _one("SELECT length(email) AS email_length FROM customers", col)
    assert result == ColumnClass(
        Classification.CONFIDENTIAL, True, ("customer.customers.email",), False
    )


def test_hash_still_inherits_without_declassify() -> None:
    col = {"name": "email_hash", "type": "varchar"}
    result = _one("SELECT sha256(email) AS email_hash FROM customers", col)
    assert result.pii
    assert result.classification == Classification.CONFIDENTIAL
    assert not result.declassified


def test_hash_declassified_with_a_reason() -> None:
    col = {
        "name": "email_hash",
        "type": "varchar",
        "declassify": {"to": "internal", "reason": "SHA-256 hash, salted per run"},
    }
    result = _one("SELECT sha256(email) AS email_hash FROM customers", col)
    assert result == ColumnClass(
        Classification.INTERNAL, False, ("customer.customers.email",), True
    )


def test_aggregate_declassified_with_a_reason_passes() -> None:
    col = {
        "name": "customers_with_tax_id",
        "type": "bigint",
        "declassify": {"to": "public", "reason": "a count per region reveals no person"},
    }
    sql = "SELECT count(DISTINCT tax_id) AS customers_with_tax_id FROM customers GROUP BY region"
    result = _one(sql, col)
    # public inherited part, but the product's own default (internal) still stands
    assert result == ColumnClass(
        Classification.INTERNAL, False, ("customer.customers.tax_id",), True
    )


def test_declassify_keeps_the_columns_own_declared_pii_and_classification() -> None:
    col = {
        "name": "email_hash",
        "type": "varchar",
        "pii": True,
        "classification": "confidential",
        "declassify": {"to": "public", "reason": "SHA-256 hash, salted per run"},
    }
    result = _one("SELECT sha256(tax_id) AS email_hash FROM customers", col)
    assert result.classification == Classification.CONFIDENTIAL
    assert result.pii
    assert result.declassified


def test_declassify_with_nothing_inherited_lowers_nothing() -> None:
    col = {
        "name": "amount",
        "type": "double",
        "declassify": {"to": "public", "reason": "nothing sensitive flows here"},
    }
    result = _one("SELECT amount FROM orders", col)
    assert result == ColumnClass(Classification.INTERNAL, False, (), False)


def test_count_star_inherits_nothing() -> None:
    col = {"name": "customers", "type": "bigint"}
    result = _one("SELECT count(*) AS customers FROM customers", col)
    assert result == ColumnClass(Classification.INTERNAL, False, (), False)


def test_filter_columns_do_not_flow() -> None:
    col = {"name": "region", "type": "varchar"}
    sql = "SELECT region FROM customers WHERE email LIKE '%@example.com' AND tax_id IS NULL"
    assert _one(sql, col) == ColumnClass(Classification.INTERNAL, False, (), False)


def test_the_most_restrictive_source_wins() -> None:
    col = {"name": "contact", "type": "varchar"}
    result = _one("SELECT coalesce(tax_id, email) AS contact FROM customers", col)
    assert result == ColumnClass(
        Classification.RESTRICTED,
        True,
        ("customer.customers.email", "customer.customers.tax_id"),
        False,
    )


def test_a_higher_declared_classification_stands() -> None:
    col = {"name": "customer_name", "type": "varchar", "classification": "restricted"}
    result = _one("SELECT customer_name FROM customers", col)
    assert result.classification == Classification.RESTRICTED
    assert result.inherited_from == ("customer.customers.customer_name",)  # for its pii


def test_sources_at_or_below_the_declared_level_are_not_listed() -> None:
    col = {"name": "total", "type": "double"}
    result = _one(
        "SELECT sum(o.amount) + length(c.region) AS total FROM orders o "
        "JOIN customers c USING (customer_key)",
        col,
    )
    assert result == ColumnClass(Classification.INTERNAL, False, (), False)


def test_file_inputs_contribute_nothing() -> None:
    product = _product(
        "d",
        "report",
        [{"name": "note", "type": "varchar"}, {"name": "email", "type": "varchar"}],
        inputs=[*PORTS, {"name": "notes", "file": "data/notes.csv"}],
        sql="SELECT n.note, c.email FROM notes n JOIN customers c ON c.customer_key = n.id",
    )
    result = propagate(product, UPSTREAM)
    assert result["note"] == ColumnClass(Classification.INTERNAL, False, (), False)
    assert result["email"].pii


def test_an_upstream_product_not_given_contributes_nothing() -> None:
    product = _product(
        "d",
        "report",
        [{"name": "customer_name", "type": "varchar"}],
        inputs=PORTS,
        sql="SELECT customer_name FROM customers",
    )
    assert not propagate(product, {})["customer_name"].pii


def test_python_transform_inherits_from_every_upstream_column() -> None:
    """Python cannot be traced: fail closed, so a renamed PII column cannot slip through."""
    product = _product(
        "d",
        "report",
        [
            {"name": "handle", "type": "varchar"},  # could be customer_name renamed
            {"name": "score", "type": "double"},
            {
                "name": "total",
                "type": "double",
                "declassify": {"to": "internal", "reason": "a sum over at least 50 orders"},
            },
        ],
        inputs=PORTS,
        python=True,
    )
    lineage = _render(product_lineage(product, UPSTREAM))
    assert lineage["handle"] == lineage["score"] == lineage["total"]
    assert "customers.customer_name" in lineage["handle"]
    result = propagate(product, UPSTREAM)
    assert result["handle"].pii
    assert result["score"].pii
    assert not result["total"].pii
    assert result["total"].declassified


def test_every_declared_column_gets_a_class() -> None:
    product = _product(
        "d",
        "report",
        [{"name": "customer_key", "type": "bigint"}, {"name": "missing", "type": "varchar"}],
        inputs=PORTS,
        sql="SELECT customer_key FROM customers",
    )
    assert set(propagate(product, UPSTREAM)) == {"customer_key", "missing"}


def test_product_lineage_uses_upstream_schemas_and_opaque_files() -> None:
    product = _product(
        "d",
        "report",
        [
            {"name": "customer_key", "type": "bigint"},
            {"name": "email", "type": "varchar"},
            {"name": "note", "type": "varchar"},
        ],
        inputs=[*PORTS, {"name": "notes", "file": "data/notes.csv"}],
        sql="SELECT c.customer_key, c.email, n.* FROM customers c JOIN notes n USING (customer_key)",
    )
    assert _render(product_lineage(product, UPSTREAM)) == {
        "customer_key": {"customers.customer_key"},
        "email": {"customers.email"},
        "note": {"notes.note"},
    }


def test_product_lineage_of_a_star_over_a_file_input_is_the_declared_schema() -> None:
    product = _product(
        "d",
        "copy",
        [{"name": "id", "type": "bigint"}, {"name": "name", "type": "varchar"}],
        sql="SELECT * FROM raw",
    )
    assert _render(product_lineage(product, {})) == {"id": {"raw.id"}, "name": {"raw.name"}}


def test_product_lineage_errors_name_the_product() -> None:
    product = _product(
        "d",
        "report",
        [{"name": "x", "type": "varchar"}],
        inputs=PORTS,
        sql="SELECT nope AS x FROM customers",
    )
    with pytest.raises(MeshkitError, match=r"^d\.report: unknown column 'nope'"):
        propagate(product, UPSTREAM)


def test_inline_query_transform_is_used_when_no_text_was_loaded() -> None:
    spec = DataProductSpec.model_validate(
        product_spec(
            "inline",
            inputs=PORTS,
            transform={"query": "SELECT email AS contact FROM customers"},
            schema={"columns": [{"name": "contact", "type": "varchar"}]},
        )
    )
    product = Product(file=Path("x.yaml"), raw=None, spec=spec, domain="d")  # type: ignore[arg-type]
    assert _render(product_lineage(product, UPSTREAM)) == {"contact": {"customers.email"}}


def test_the_example_mesh_has_lineage_for_every_declared_column() -> None:
    from meshkit.demo import example_mesh_path

    mesh = load_mesh(example_mesh_path())
    for product in mesh.products.values():
        lineage = product_lineage(product, mesh.products)
        declared = {c.name for c in product.spec.schema_.columns}
        assert declared <= set(lineage), product.id
        assert set(propagate(product, mesh.products)) == declared
    audience = product_lineage(mesh.products["marketing.campaign_audience"], mesh.products)
    assert _render(audience)["email"] == {"contacts.email"}
