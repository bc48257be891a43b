"""Checks of the access keys that need more than one field: row filters and SQL masks are
parsed and bound to the product's columns at validate time, so a typo is a located problem
in `meshkit validate` rather than a refused query later (queries stay fail-closed too)."""

from __future__ import annotations

from collections.abc import Iterator

import sqlglot
from sqlglot import exp

from meshkit.errors import Problem
from meshkit.spec.mesh import Mesh, Product

DIALECT = "duckdb"


def access_problems(mesh: Mesh) -> Iterator[Problem]:
    attributes = {k for p in mesh.spec.access.principals for k in p.attributes}
    for product in mesh.products.values():
        yield from _row_filter(product, attributes)
        yield from _masks(product)
        rule = product.spec.access.auto_approve
        for i, domain in enumerate(rule.domains if rule is not None else []):
            if domain != "own" and domain not in mesh.domains:
                yield product.problem(
                    f"auto_approve names unknown domain {domain!r}",
                    ["access", "auto_approve", "domains", i],
                    hint=f"use 'own' or one of: {', '.join(sorted(mesh.domains))}",
                )


def _row_filter(product: Product, attributes: set[str]) -> Iterator[Problem]:
    predicate = product.spec.access.row_filter
    if predicate is None:
        return
    loc: list[str | int] = ["access", "row_filter"]
    tree = _parse(predicate)
    if tree is None:
        yield product.problem(
            "the row filter does not parse as a SQL predicate",
            loc,
            hint="write a DuckDB boolean expression, e.g. region = caller.region",
        )
        return
    columns = {c.name.lower() for c in product.spec.schema_.columns}
    for ref in tree.find_all(exp.Column):
        if ref.table.lower() == "caller":
            if ref.name not in attributes:
                yield product.problem(
                    f"the row filter reads caller.{ref.name}, which no principal has",
                    loc,
                    hint="set it under access.principals[].attributes in mesh.yaml (callers "
                    "without it are refused)",
                )
        elif ref.table or ref.name.lower() not in columns:
            yield product.problem(
                f"the row filter reads {ref.sql(dialect=DIALECT)}, which is not a column of "
                "the product",
                loc,
                hint=f"its columns are: {', '.join(c.name for c in product.spec.schema_.columns)}",
            )
    yield from _plain(product, tree, loc, "the row filter")


def _masks(product: Product) -> Iterator[Problem]:
    for i, column in enumerate(product.spec.schema_.columns):
        if column.masking is None or column.masking.expression is None:
            continue
        loc: list[str | int] = ["schema", "columns", i, "masking", "expression"]
        tree = _parse(column.masking.expression)
        if tree is None:
            yield product.problem(
                "the masking expression does not parse",
                loc,
                hint=f"write a DuckDB expression over {column.name}, e.g. left({column.name}, 2) || '***'",
            )
            continue
        for ref in tree.find_all(exp.Column):
            if ref.table or ref.name.lower() != column.name.lower():
                yield product.problem(
                    f"the mask of {column.name!r} reads {ref.sql(dialect=DIALECT)}: a mask may "
                    "read only its own column",
                    loc,
                    hint="another column's value would leak through the mask",
                )
        yield from _plain(product, tree, loc, f"the mask of {column.name!r}")


def _plain(product: Product, tree: exp.Expr, loc: list[str | int], what: str) -> Iterator[Problem]:
    from meshkit.access.guard import denied_function

    if tree.find(exp.Query) is not None:
        yield product.problem(f"{what} contains a subquery", loc, hint="use a plain expression")
    name = denied_function(tree)
    if name is not None:
        yield product.problem(
            f"{what} calls {name}(), which queries may not call",
            loc,
            hint="use plain scalar functions over the product's columns",
        )


def _parse(text: str) -> exp.Expr | None:
    try:
        tree = sqlglot.parse_one(text, dialect=DIALECT)
    except sqlglot.errors.SqlglotError:
        return None
    return tree
