"""SQL the platform generates, built as sqlglot ASTs (never by string formatting): reader calls,
views, typed empty relations, projections, `COPY`. Rendered in the engine's dialect by the caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp


def literal(value: Any) -> exp.Expr:
    """A Python value as a SQL literal; dicts become struct literals ({'a': 'INT'})."""
    if isinstance(value, Mapping):
        return exp.Struct(
            expressions=[
                exp.PropertyEQ(this=exp.Literal.string(str(k)), expression=literal(v))
                for k, v in value.items()
            ]
        )
    if isinstance(value, list | tuple):
        return exp.Array(expressions=[literal(v) for v in value])
    return exp.convert(value)


def table_function(name: str, paths: Sequence[str], options: Mapping[str, Any]) -> exp.Table:
    """`read_parquet(['a', 'b'], key = value, ...)` as a FROM item."""
    args: list[exp.Expr] = [exp.Array(expressions=[exp.Literal.string(p) for p in paths])]
    args += [exp.EQ(this=exp.column(k), expression=literal(v)) for k, v in options.items()]
    return exp.Table(this=exp.Anonymous(this=name, expressions=args))


def create_view(name: str, query: exp.Query, *, schema: str | None = None) -> exp.Create:
    return exp.Create(
        this=exp.table_(name, db=schema, quoted=True),
        kind="VIEW",
        expression=query,
        replace=True,
    )


def empty_relation(columns: Sequence[tuple[str, str]], *, dialect: str) -> exp.Select:
    """A typed relation with no rows: `SELECT CAST(NULL AS t) AS c, ... WHERE FALSE`, the
    types `t` read in `dialect`."""
    return exp.select(
        *(
            exp.alias_(exp.cast(exp.null(), exp.DataType.build(t, dialect=dialect)), c, quoted=True)
            for c, t in columns
        )
    ).where(exp.false())


def project(query: exp.Expr, columns: Sequence[str]) -> exp.Select:
    """`SELECT "a", "b" FROM (query)`: the contract's columns, in the contract's order."""
    return exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(
        exp.paren(query.copy()).as_("_out") if isinstance(query, exp.Query) else query.copy()
    )


def copy_to_parquet(query: exp.Query, dest: str, *, per_thread: bool = True) -> exp.Copy:
    params = [
        exp.CopyParameter(this=exp.var("FORMAT"), expression=exp.var("PARQUET")),
        exp.CopyParameter(this=exp.var("COMPRESSION"), expression=exp.var("ZSTD")),
    ]
    if per_thread:
        params.append(exp.CopyParameter(this=exp.var("PER_THREAD_OUTPUT"), expression=exp.true()))
        params.append(exp.CopyParameter(this=exp.var("OVERWRITE_OR_IGNORE"), expression=exp.true()))
    return exp.Copy(
        this=exp.paren(query), kind=False, files=[exp.Literal.string(dest)], params=params
    )
