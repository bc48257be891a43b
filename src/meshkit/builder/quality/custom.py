"""Custom `sql` checks: a SELECT returning the failing rows of the staged data (`this`).

`SELECT ... FROM this WHERE p` (one table, no grouping) becomes `count(*) FILTER (WHERE p)` in
the one scan, and its samples are the staged rows matching `p`, like any other check's. Anything
else is counted as a subquery of that same statement, and sampled from its own output, showing
only safe columns passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlglot import exp

from meshkit.builder.quality.base import THIS, Declared, Target, Verdict, col, count_where, register
from meshkit.specs.checks import SqlCheck

_NOT_A_FILTER = (
    "joins",
    "group",
    "having",
    "distinct",
    "limit",
    "offset",
    "order",
    "qualify",
    "laterals",
)


@register(SqlCheck)
class Sql(Declared[SqlCheck]):
    def __init__(self, spec: SqlCheck, target: Target) -> None:
        super().__init__(spec, target)
        query = self.sql.parse(spec.query)
        assert isinstance(query, exp.Query)  # validated when the spec loaded
        self.query = query
        self.predicate = plain_filter(query)

    def aggregates(self) -> list[exp.Expr]:
        if self.predicate is not None:
            return [count_where(self.predicate.copy())]
        failing = exp.select(exp.Count(this=exp.Star())).from_(self._failing())
        return [exp.Subquery(this=failing)]

    def failing_rows(self) -> exp.Expr | None:
        return None if self.predicate is None else self.predicate.copy()

    def sample_query(self, shown: Sequence[str]) -> exp.Select | None:
        if self.predicate is not None:
            return super().sample_query(shown)
        passed = passthrough_columns(self.query, shown)
        return exp.select(*map(col, passed)).from_(self._failing()) if passed else None

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        bad = int(values[0])
        limit = self.spec.max_failures
        return Verdict(bad <= limit, bad, limit, f"{bad} failing row(s); allowed {limit}")

    def _failing(self) -> exp.Expr:
        return exp.paren(self.query.copy()).as_("_f")


def plain_filter(query: exp.Query) -> exp.Expr | None:
    """`p` of `SELECT ... FROM this WHERE p` (TRUE without a WHERE); None for anything else."""
    if not isinstance(query, exp.Select) or query.args.get("with_"):
        return None
    source = query.args.get("from_")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name.lower() != THIS or table.db:
        return None
    if any(query.args.get(k) for k in _NOT_A_FILTER):
        return None
    if any(isinstance(e, exp.AggFunc | exp.Window) for e in query.expressions for e in e.walk()):
        return None
    where = query.args.get("where")
    if where is None:
        return exp.true()
    predicate: exp.Expr = where.this.copy()
    if any(isinstance(node, exp.Subquery | exp.Select) for node in predicate.walk()):
        return None
    for column in predicate.find_all(exp.Column):
        column.set("table", None)
    return predicate


def passthrough_columns(query: exp.Query, safe: Sequence[str]) -> list[str]:
    """Output columns of a custom check that are safe columns passed through unchanged.

    A computed or renamed output (`phone AS id`, `upper(name)`) might carry PII, so it is never
    sampled; `*` passes every column through under its own name.
    """
    safe_names = {c.lower(): c for c in safe}
    if not isinstance(query, exp.Select):
        return []
    shown: list[str] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star):
            shown += [c for c in safe if c not in shown]
            continue
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
            name = inner.name.lower()
            if name in safe_names and projection.alias_or_name.lower() == name:
                shown.append(projection.alias_or_name)
    return shown
