"""Checks of the access keys that need more than one field: row filters and SQL masks are
parsed and bound to the product's columns at validate time, so a typo is a located problem
in `meshkit validate` rather than a refused query later (queries stay fail-closed too)."""

from __future__ import annotations

from collections.abc import Collection, Iterator

import sqlglot
from sqlglot import exp

from meshkit.errors import Problem
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.functions import denied_function
from meshkit.sql.parse import dialect_title


def access_problems(mesh: Mesh, dialect: str) -> Iterator[Problem]:
    """Problems of the row filters and SQL masks of every product, read in `dialect`."""
    attributes = {k for p in mesh.spec.access.principals for k in p.attributes}
    for product in mesh.products.values():
        yield from _row_filter(product, attributes, dialect)
        yield from _masks(product, dialect)
        rule = product.spec.access.auto_approve
        for i, domain in enumerate(rule.domains if rule is not None else []):
            if domain != "own" and domain not in mesh.domains:
                yield product.problem(
                    f"auto_approve names unknown domain {domain!r}",
                    ["access", "auto_approve", "domains", i],
                    hint=f"use 'own' or one of: {', '.join(sorted(mesh.domains))}",
                )


def parse_expression(text: str, dialect: str) -> exp.Expr | None:
    """A row filter or SQL mask as sqlglot reads it; None when it does not parse."""
    try:
        return sqlglot.parse_one(text, dialect=dialect)
    except sqlglot.errors.SqlglotError:
        return None


def filter_faults(tree: exp.Expr, columns: Collection[str], dialect: str) -> list[str]:
    """What is wrong with a row filter, apart from caller attributes (checked where the caller
    is known): each as the end of a sentence starting "the row filter ..."."""
    known = {c.lower() for c in columns}
    faults = [
        f"reads {ref.sql(dialect=dialect)}, which is not a column of the product"
        for ref in tree.find_all(exp.Column)
        if ref.table.lower() != "caller" and (ref.table or ref.name.lower() not in known)
    ]
    return faults + _plain_faults(tree, dialect)


def mask_faults(tree: exp.Expr, column: str, dialect: str) -> list[str]:
    """What is wrong with a `sql` mask of `column`, as ends of "the mask of 'c' ..."."""
    faults = [
        f"reads {ref.sql(dialect=dialect)}: a mask may read only its own column"
        for ref in tree.find_all(exp.Column)
        if ref.table or ref.name.lower() != column.lower()
    ]
    return faults + _plain_faults(tree, dialect)


def _plain_faults(tree: exp.Expr, dialect: str) -> list[str]:
    faults = ["contains a subquery"] if tree.find(exp.Query) is not None else []
    name = denied_function(tree, dialect)
    if name is not None:
        faults.append(f"calls {name}(), which queries may not call")
    return faults


def _row_filter(product: Product, attributes: set[str], dialect: str) -> Iterator[Problem]:
    predicate = product.spec.access.row_filter
    if predicate is None:
        return
    loc: list[str | int] = ["access", "row_filter"]
    tree = parse_expression(predicate, dialect)
    if tree is None:
        yield product.problem(
            "the row filter does not parse as a SQL predicate",
            loc,
            hint=f"write a {dialect_title(dialect)} boolean expression, e.g. region = caller.region",
        )
        return
    for ref in tree.find_all(exp.Column):
        if ref.table.lower() == "caller" and ref.name not in attributes:
            yield product.problem(
                f"the row filter reads caller.{ref.name}, which no principal has",
                loc,
                hint="set it under access.principals[].attributes in mesh.yaml (callers "
                "without it are refused)",
            )
    names = [c.name for c in product.spec.schema_.columns]
    for fault in filter_faults(tree, names, dialect):
        yield product.problem(
            f"the row filter {fault}", loc, hint=f"its columns are: {', '.join(names)}"
        )


def _masks(product: Product, dialect: str) -> Iterator[Problem]:
    for i, column in enumerate(product.spec.schema_.columns):
        if column.masking is None or column.masking.expression is None:
            continue
        loc: list[str | int] = ["schema", "columns", i, "masking", "expression"]
        tree = parse_expression(column.masking.expression, dialect)
        if tree is None:
            yield product.problem(
                "the masking expression does not parse",
                loc,
                hint=f"write a {dialect_title(dialect)} expression over {column.name}, e.g. "
                f"left({column.name}, 2) || '***'",
            )
            continue
        for fault in mask_faults(tree, column.name, dialect):
            yield product.problem(
                f"the mask of {column.name!r} {fault}",
                loc,
                hint="a mask is a plain expression over its own column, e.g. left(email, 2) || '***'",
            )
