"""Column masks and row filters as sqlglot expressions, and who gets which.

A consumer reads a product through a view that selects, for each column it may see, either the
column or its mask, from the product's rows that pass the row filter. Everything the
consumer's query does (WHERE, JOIN, GROUP BY, ORDER BY, window functions, errors) happens on
top of that view, so it only ever sees masked values and filtered rows.

Decisions (fail-closed wherever one cannot be made):
* A column's level is its classification after lineage (`governance.column_classes`), at least
  `confidential` when it is PII. The owning domain's members see every column as is; anyone
  else sees a column as is only when their clearance reaches its level, and its mask otherwise.
  A column that needs a mask and has none refuses the query.
* The row filter (`access.row_filter` in the spec) applies to everyone outside the owning
  domain; a `caller.<attribute>` the caller does not have refuses the query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from meshkit.access.identity import Caller, level
from meshkit.errors import AccessDenied
from meshkit.governance.lineage import ColumnClass
from meshkit.specs.access import Masking
from meshkit.specs.access_checks import filter_faults, mask_faults, parse_expression
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification
from meshkit.specs.product import Column

REDACTED = "***"


@dataclass(frozen=True)
class ColumnView:
    name: str
    expression: exp.Expr  # the column, or its mask
    masked: bool


@dataclass(frozen=True)
class ProductView:
    """What one caller sees of one product."""

    product: str
    columns: tuple[ColumnView, ...]
    row_filter: exp.Expr | None

    @property
    def masked(self) -> list[str]:
        return [c.name for c in self.columns if c.masked]


def describe(rule: Masking | None) -> str | None:
    """A masking rule in a few words: `hash`, `partial (last 4 kept)`, `sql: left(x, 2)`."""
    if rule is None:
        return None
    if rule.rule == "partial":
        return f"partial (last {rule.keep} kept)"
    if rule.rule == "sql":
        return f"sql: {rule.expression}"
    return str(rule.rule)


def column_level(cls: ColumnClass) -> Classification:
    if cls.pii and level(cls.classification) < level(Classification.CONFIDENTIAL):
        return Classification.CONFIDENTIAL
    return cls.classification


def product_view(
    caller: Caller,
    product: Product,
    classes: Mapping[str, ColumnClass],
    granted: list[str] | None,
    hash_key: str = "",
    *,
    dialect: str,
) -> ProductView:
    """The columns (as is or masked) and rows `caller` may see; `granted` None means all.
    Masks and the row filter are read in `dialect`, the engine's."""
    member = caller.trusted or product.domain in caller.domains
    columns = []
    for column in product.spec.schema_.columns:
        if not member and granted is not None and column.name not in granted:
            continue
        raw = exp.column(column.name, quoted=True)
        cls = classes.get(column.name)
        needed = column_level(cls) if cls is not None else Classification.RESTRICTED
        if member or level(caller.clearance) >= level(needed):
            columns.append(ColumnView(column.name, raw, masked=False))
            continue
        if column.masking is None:
            raise AccessDenied(
                f"column {column.name!r} of {product.id} is {needed} and has no masking rule: "
                "the query is refused",
                hint=f"ask the owners of {product.domain} to declare a masking rule for it",
            )
        columns.append(
            ColumnView(
                column.name, mask(column, column.masking, hash_key, dialect=dialect), masked=True
            )
        )
    row_filter = None
    if not member and product.spec.access.row_filter:
        row_filter = bind_filter(
            product, product.spec.access.row_filter, caller.attributes, dialect=dialect
        )
    return ProductView(product.id, tuple(columns), row_filter)


def mask(column: Column, rule: Masking, hash_key: str = "", *, dialect: str) -> exp.Expr:
    """The masked value of `column` (NULL stays NULL, so counts of missing values agree).

    `hash` is SHA-256 of the platform's secret `hash_key` followed by the value: equal values
    still hash equally (joins, distinct counts), but a consumer cannot recompute the hash of a
    guessed value, as it could with a plain SHA-256 of a small domain (names, phone numbers)."""
    raw = exp.column(column.name, quoted=True)
    text = exp.cast(raw.copy(), "VARCHAR")
    if rule.rule == "null":
        return exp.cast(exp.Null(), column.type)
    if rule.rule == "hash":
        return exp.func(
            "sha256", exp.DPipe(this=exp.Literal.string(hash_key), expression=text), dialect=dialect
        )
    if rule.rule == "redact":
        shown: exp.Expr = exp.Literal.string(REDACTED)
    elif rule.rule == "partial":
        stars = exp.func(
            "repeat",
            exp.Literal.string("*"),
            exp.func(
                "greatest",
                exp.Sub(
                    this=exp.Length(this=text.copy()), expression=exp.Literal.number(rule.keep)
                ),
                exp.Literal.number(0),
                dialect=dialect,
            ),
            dialect=dialect,
        )
        shown = exp.DPipe(
            this=stars,
            expression=exp.Right(this=text.copy(), expression=exp.Literal.number(rule.keep)),
        )
    else:
        shown = custom_mask(column, rule.expression or "", dialect=dialect)
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=raw.copy(), expression=exp.Null()), true=exp.Null())],
        default=shown,
    )


def custom_mask(column: Column, expression: str, *, dialect: str) -> exp.Expr:
    """A `sql` masking rule, held to the rules `meshkit validate` applies (fail-closed: a spec
    that got past validation still cannot widen a mask)."""
    tree = parse_expression(expression, dialect)
    faults = ["does not parse"] if tree is None else mask_faults(tree, column.name, dialect)
    if tree is None or faults:
        raise AccessDenied(
            f"the mask of {column.name!r} {faults[0]}: the query is refused",
            hint="fix schema.columns[].masking.expression in the product spec",
        )
    return tree


def bind_filter(
    product: Product, predicate: str, attributes: Mapping[str, Any], *, dialect: str
) -> exp.Expr:
    """The row filter with each `caller.<attribute>` replaced by the caller's value."""
    tree = parse_expression(predicate, dialect)
    columns = [c.name for c in product.spec.schema_.columns]
    faults = ["does not parse"] if tree is None else filter_faults(tree, columns, dialect)
    if tree is None or faults:
        raise AccessDenied(
            f"the row filter of {product.id} {faults[0]}: the query is refused",
            hint="fix access.row_filter in the product spec",
        )

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table.lower() == "caller":
            if node.name not in attributes:
                raise AccessDenied(
                    f"{product.id} filters rows on caller.{node.name}, which you do not have: "
                    "the query is refused",
                    hint="ask a mesh admin to set this attribute on your principal "
                    "(access.principals in mesh.yaml)",
                )
            return _literal(attributes[node.name])
        return node

    return tree.transform(substitute)


def _literal(value: Any) -> exp.Expr:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))
