"""The contract compares nested types by structure: STRUCT, LIST and MAP, to any depth, with
field names that are SQL reserved words (DuckDB prints those quoted, specs rarely do)."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from meshkit.builder.contract import type_key
from meshkit.errors import SpecError
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec

NESTED_QUERY = """
select
    id,
    {'name': 'ana', 'order': id, 'select': 'x'} as person,
    [id, id + 1] as ids,
    [{'value': id, 'group': 'g'}] as items,
    map(['k'], [{'from': id, 'to': [id]}]) as ranges,
    {'inner': {'user': [map([1], ['one'])]}} as deep
from raw
"""

NESTED_COLUMNS = [
    {"name": "id", "type": "bigint", "primary_key": True},
    # unquoted reserved words, other case, LIST(T) for T[]: the same types as DuckDB's
    {"name": "person", "type": 'struct(NAME varchar, "order" bigint, "select" text)'},
    {"name": "ids", "type": "list(bigint)"},
    {"name": "items", "type": 'struct("value" bigint, "group" varchar)[]'},
    {"name": "ranges", "type": 'map(varchar, struct("from" bigint, "to" bigint[]))'},
    {"name": "deep", "type": 'struct("inner" struct("user" map(integer, varchar)[]))'},
]


def nested_mesh(make_mesh: MakeMesh, columns: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    root = make_mesh(
        {
            "shop": {
                "people": product_spec(
                    "people",
                    inputs=[{"name": "raw", "file": "data/ids.csv"}],
                    transform={"query": NESTED_QUERY},
                    schema={"columns": columns},
                    quality=[
                        {"type": "null_fraction", "column": "person", "max": 0},
                        {"type": "unique", "columns": ["id"]},
                    ],
                )
            }
        },
        files={"data/ids.csv": "id\n1\n2\n3\n"},
    )
    return root


def test_nested_columns_with_reserved_field_names_pass_validate_and_build(
    make_mesh: MakeMesh,
) -> None:
    root = nested_mesh(make_mesh, NESTED_COLUMNS)
    with Workspace(root) as ws:
        ws.validate()
        (result,) = ws.build()
        assert result.ok, result.error
        table = DeltaTable(str(ws.table_of("shop.people")))
        rows = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
        assert rows[0]["person"] == {"name": "ana", "order": 1, "select": "x"}
        assert rows[2]["ranges"] == [("k", {"from": 3, "to": [3]})]
        got = ws.query("select person.order as o, items[1].group as g from shop.people order by o")
        assert got.to_pylist()[0] == {"o": 1, "g": "g"}


@pytest.mark.parametrize(
    ("column", "declared", "produced"),
    [
        ("person", 'struct(name varchar, "order" integer, "select" varchar)', "BIGINT"),
        ("items", 'struct("value" bigint, "grp" varchar)[]', "field 'items[].grp' is not produced"),
        ("ranges", 'map(varchar, struct("from" bigint, "to" bigint))', "'ranges value.to' is LIST"),
        ("ids", "bigint[2]", "BIGINT[]"),
    ],
)
def test_a_nested_difference_is_reported(
    make_mesh: MakeMesh, column: str, declared: str, produced: str
) -> None:
    columns = [dict(c, type=declared) if c["name"] == column else c for c in NESTED_COLUMNS]
    root = nested_mesh(make_mesh, columns)
    with Workspace(root) as ws, pytest.raises(SpecError) as info:
        ws.validate()
    (problem,) = info.value.problems
    assert f"column '{column}' is " in problem.message
    assert produced in problem.message
    assert problem.path == f"schema.columns[{[c['name'] for c in columns].index(column)}]"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ('STRUCT("name" VARCHAR, "value" INTEGER)', "struct(name varchar, value int)", True),
        ("INTEGER[]", "list(integer)", True),
        ("INTEGER[3]", "INTEGER[]", False),
        ('MAP(VARCHAR, STRUCT("order" INTEGER[]))', "map(text, struct(ORDER integer[]))", True),
        ("STRUCT(a INTEGER, b INTEGER)", "STRUCT(b INTEGER, a INTEGER)", False),
        ("STRUCT(a INTEGER)", "STRUCT(a BIGINT)", False),
        ("DECIMAL(10,2)", "decimal(12, 2)", False),
        ("TIMESTAMP WITH TIME ZONE", "timestamptz", True),
        ('UNION("num" INTEGER, "str" VARCHAR)', "union(num int, str text)", True),
    ],
)
def test_type_key_compares_structure(a: str, b: str, same: bool) -> None:
    assert (type_key(a, "duckdb") == type_key(b, "duckdb")) is same
