"""Reading SQL text with sqlglot in a dialect, and saying where it is wrong: sqlglot's errors as
(message, line, column), character offsets and parsed nodes as line and column."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp


def statements(sql: str, dialect: str) -> list[exp.Expr]:
    """The statements of `sql` as sqlglot reads them in `dialect`; sqlglot's errors propagate."""
    return [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]


def parse_one(sql: str, dialect: str) -> exp.Expr:
    """One statement or expression; sqlglot's errors propagate."""
    return sqlglot.parse_one(sql, dialect=dialect)


def dialect_title(dialect: str) -> str:
    """The dialect's name as its users write it ("DuckDB", "Postgres"), for messages."""
    return type(sqlglot.Dialect.get_or_raise(dialect)).__name__


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    offset = min(offset, len(text))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_error(err: sqlglot.ParseError) -> tuple[str, int | None, int | None]:
    """sqlglot's first error as (readable message, line, column of the offending token's start).

    sqlglot reports the column where the highlighted token *ends*, and names its own classes
    ("Required keyword: 'expression' missing for <class 'sqlglot...Mul'>").
    """
    first = err.errors[0] if err.errors else {}
    description = str(first.get("description") or err)
    description = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", description)
    highlight = str(first.get("highlight") or "")
    line = first.get("line")
    column = first.get("col")
    if highlight and "\n" not in highlight and isinstance(column, int):
        column = max(1, column - len(highlight) + 1)
    if highlight:
        description += f" (near '{highlight.strip()}')"
    return description, line if isinstance(line, int) else None, column


def node_position(sql: str, node: exp.Expression) -> tuple[int | None, int | None]:
    """1-based line and column where a parsed node (e.g. a table reference) starts in `sql`."""
    starts = [
        ident.meta["start"]
        for ident in node.find_all(exp.Identifier)
        if isinstance(ident.meta.get("start"), int)
    ]
    if not starts:
        return None, None
    return line_column(sql, min(starts))


def table_function_reads(table: exp.Table) -> bool:
    """`FROM 'file.parquet'` (a quoted path) is a table function in disguise."""
    return (
        isinstance(table.this, exp.Identifier)
        and table.this.quoted
        and ("/" in table.name or "." in table.name)
    )
