"""Reading a source database: a table (reflected, its types mapped) or a read-only query,
streamed `batch_size` rows at a time into a `ParquetSink`."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, CursorResult

from meshkit.connectors.parquet import ParquetSink
from meshkit.connectors.sessions import db_error
from meshkit.connectors.types import Plan, plan_for_pg_oid, plan_for_sql_type
from meshkit.errors import InputError
from meshkit.suggest import close_matches

_QUERY_KEYWORDS = frozenset({"select", "with", "values", "table"})
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)


def execute_table(
    conn: Connection, url: URL, masked: str, table: str, schema: str | None, batch_size: int
) -> tuple[CursorResult[Any], list[Plan]]:
    qualified = f"{schema}.{table}" if schema else table
    doing = f"cannot read table {qualified!r} from {masked}"
    if schema is not None:
        _check_schema(conn, url, masked, schema)
    try:
        with warnings.catch_warnings():
            # Unknown column types (extensions, domains) reflect as NullType; we infer those.
            warnings.filterwarnings("ignore", category=sa_exc.SAWarning)
            reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
    except sa_exc.NoSuchTableError:
        raise _unknown_table(conn, url, masked, table, schema) from None
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, doing, table=qualified) from None

    plans = [plan_for_sql_type(column.name, column.type) for column in reflected.columns]
    statement = sa.select(*reflected.columns)
    options = conn.execution_options(stream_results=True, yield_per=batch_size)
    try:
        result = options.execute(statement)
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, doing, table=qualified) from None
    return result, plans


def _check_schema(conn: Connection, url: URL, masked: str, schema: str) -> None:
    try:
        schemas = sa.inspect(conn).get_schema_names()
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, f"cannot list the schemas of {masked}") from None
    if schema not in schemas:
        raise InputError(
            f"schema {schema!r} not found in {masked}",
            hint=did_you_mean(schema, schemas, "schemas"),
        )


def _unknown_table(
    conn: Connection, url: URL, masked: str, table: str, schema: str | None
) -> InputError:
    inspector = sa.inspect(conn)
    try:
        names = sorted(
            set(inspector.get_table_names(schema=schema))
            | set(inspector.get_view_names(schema=schema))
        )
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, f"cannot list the tables of {masked}") from None
    where = f"schema {schema!r} of {masked}" if schema else masked
    if not names:
        return InputError(
            f"table {table!r} not found: {where} has no tables",
            hint="is this the right database (or schema)?",
        )
    hint = did_you_mean(table, names, "tables")
    if "." in table and schema is None:
        left, _, right = table.partition(".")
        hint = f"to read table {right!r} in schema {left!r}, set schema: {left}; {hint}"
    return InputError(f"table {table!r} not found in {where}", hint=hint)


def did_you_mean(name: str, candidates: Sequence[str], noun: str) -> str:
    close = close_matches(name, candidates, fold=True)
    shown = ", ".join(candidates[:20]) + (
        f", ... ({len(candidates) - 20} more)" if len(candidates) > 20 else ""
    )
    listing = f"{noun}: {shown}" if candidates else f"there are no {noun}"
    if close:
        suggestions = " or ".join(repr(c) for c in close)
        return f"did you mean {suggestions}? {listing}"
    return listing


def execute_query(
    conn: Connection, url: URL, masked: str, query: str, batch_size: int
) -> tuple[CursorResult[Any], list[Plan]]:
    sql = query.strip().rstrip(";").strip()
    keyword = _first_keyword(sql)
    if keyword not in _QUERY_KEYWORDS:
        shown = keyword.upper() or "nothing"
        raise InputError(
            f"a database input's query must be a SELECT, got {shown}",
            hint="write `query: SELECT ... FROM ...`, or use `table:` to read a whole table",
        )
    options = conn.execution_options(stream_results=True, yield_per=batch_size, no_parameters=True)
    try:
        # Sent to the driver untouched: no bind-parameter parsing of `:name` or `%`.
        # yield_per is not applied to driver SQL by the execution option alone: set it here.
        result = options.exec_driver_sql(sql).yield_per(batch_size)
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, f"the query failed on {masked}") from None
    if not result.returns_rows:
        result.close()
        raise InputError(
            "the database input's query returned no result set",
            hint="write a single SELECT statement",
        )
    names = list(result.keys())
    description = result.cursor.description or ()
    plans: list[Plan] = []
    pg = conn.dialect.name == "postgresql" and conn.dialect.driver in ("psycopg", "psycopg2")
    for index, name in enumerate(names):
        entry = description[index] if index < len(description) else None
        if pg and entry is not None:
            plans.append(plan_for_pg_oid(name, entry))
        else:
            plans.append(Plan(name, None, None, "?"))
    return result, plans


def _first_keyword(sql: str) -> str:
    """The statement's first keyword, lower-cased, after comments and opening parentheses."""
    position = 0
    while True:
        noise = _LEADING_NOISE.match(sql, position)
        if noise is None or noise.end() == position:
            break
        position = noise.end()
    match = re.compile(r"[A-Za-z]+").match(sql, position)
    return match.group(0).lower() if match else ""


def stream(
    result: CursorResult[Any],
    sink: ParquetSink,
    url: URL,
    masked: str,
    label: str,
    batch_size: int,
) -> None:
    partitions = result.partitions(batch_size)
    try:
        while True:
            try:
                rows = next(partitions, None)
            except sa_exc.DBAPIError as exc:
                raise db_error(exc, url, masked, f"cannot read {label} from {masked}") from None
            except (ValueError, TypeError, OverflowError) as exc:
                # A value the column's type cannot parse (SQLite stores dates as free text).
                raise InputError(
                    f"cannot read {label} from {masked}: after {sink.rows} rows, "
                    f"a value could not be decoded: {exc}",
                    hint="fix the stored value, or read it as text with a query and CAST",
                ) from None
            if rows is None:
                break
            sink.write(rows)
    finally:
        result.close()
