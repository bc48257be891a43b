"""DuckDB's own parser, asked through one in-memory connection (parsed, never run): its parse
tree of a text (`json_serialize_sql`), the statement types it makes of it, its syntax errors,
the tables a plain SELECT reads and where a name stands in the text, and RE2's verdict on a
pattern (DuckDB evaluates patterns with RE2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import duckdb

_LOCK = threading.Lock()
_connection: duckdb.DuckDBPyConnection | None = None
_PARSED: dict[str, dict[str, Any]] = {}


def _con() -> duckdb.DuckDBPyConnection:
    """The parser's connection, made on first use (connecting costs ~0.1 s); hold `_LOCK`."""
    global _connection
    if _connection is None:
        _connection = duckdb.connect(":memory:")
    return _connection


def parse_all(sqls: Sequence[str]) -> None:
    """Parse many texts in one DuckDB query (a call costs ~2 ms; a row costs ~0.1 ms)."""
    todo = sorted({q for q in sqls if q not in _PARSED})
    if not todo:
        return
    try:
        with _LOCK:
            rows = (
                _con()
                .execute(
                    "SELECT q, json_serialize_sql(q) FROM unnest(?::VARCHAR[]) AS t(q)", [todo]
                )
                .fetchall()
            )
    except duckdb.Error:
        return
    for sql, tree in rows:
        if isinstance(tree, str):
            _PARSED[sql] = json.loads(tree)


def parse(sql: str) -> dict[str, Any] | None:
    """DuckDB's own parse tree of `sql` (json_serialize_sql), or None if it cannot be had."""
    if sql in _PARSED:
        return _PARSED[sql]
    try:
        serialized = _serialized(sql)
    except duckdb.Error:  # e.g. the json extension cannot be loaded: sqlglot still checks
        return None
    if serialized is None:
        return None
    parsed: dict[str, Any] = json.loads(serialized)
    return parsed


@lru_cache(maxsize=256)
def _serialized(sql: str) -> str | None:
    """The text's tree as JSON; the same text is often asked about twice in a row (its
    tables, then its syntax error)."""
    with _LOCK:
        row = _con().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    return row[0] if row is not None and isinstance(row[0], str) else None


def statement_types(sql: str) -> list[str]:
    """The types of the statements DuckDB's parser makes of `sql` (parsed, never run)."""
    try:
        with _LOCK:
            return [s.type.name for s in _con().extract_statements(sql)]
    except duckdb.Error:
        return []


def syntax_error(sql: str, parsed: dict[str, Any] | None = None) -> tuple[str, int | None] | None:
    """DuckDB's own parser on the SQL as written: (message, character offset) of a syntax error.

    sqlglot alone is lenient (it accepts `SELECT a,, b` and reads `FROM FROM x` as a subquery),
    and the SQL is DuckDB SQL, so DuckDB decides what is valid syntax.
    """
    result = parsed if parsed is not None else parse(sql)
    if result is None or not result.get("error") or result.get("error_type") != "parser":
        return None
    position = str(result.get("position", ""))
    offset = None
    if position.isdigit():  # a byte offset into the UTF-8 text
        offset = len(sql.encode()[: int(position)].decode(errors="ignore"))
    return str(result.get("error_message", "syntax error")), offset


def plain_reads(parsed: dict[str, Any]) -> tuple[set[str], set[str]] | None:
    """(tables read, CTE names) from DuckDB's parse tree of a single SELECT, or None when the
    tree is not that (the sqlglot path then explains what is wrong)."""
    statements = parsed.get("statements")
    if parsed.get("error") or not isinstance(statements, list) or len(statements) != 1:
        return None
    tables: set[str] = set()
    ctes: set[str] = set()
    stack: list[Any] = [statements[0]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "TABLE_FUNCTION":
                return None  # the sqlglot path explains why this is refused
            if node.get("type") == "BASE_TABLE":
                if node.get("schema_name") or node.get("catalog_name"):
                    return None
                tables.add(str(node.get("table_name", "")).lower())
            cte_map = node.get("cte_map")
            if isinstance(cte_map, dict):
                ctes.update(str(e.get("key", "")).lower() for e in cte_map.get("map", []))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return tables, ctes


def locate(sql: str, kind: str, name: str) -> tuple[int, int] | None:
    """(character offset, length) of the earliest `kind` named `name` (lower-case) in DuckDB's
    parse tree of `sql`; None when it is not there or the text does not parse."""
    tree = parse(sql)
    if tree is None or tree.get("error"):
        return None
    spots = sorted(_spots(tree, kind, name))
    if not spots:
        return None
    start, length = spots[0]
    prefix = sql.encode()[:start].decode(errors="ignore")
    found = sql.encode()[start : start + length].decode(errors="ignore")
    return len(prefix), max(1, len(found))


def _spots(node: Any, kind: str, name: str) -> Iterator[tuple[int, int]]:
    if isinstance(node, list):
        for item in node:
            yield from _spots(item, kind, name)
        return
    if not isinstance(node, dict):
        return
    spot = _spot(node, kind, name)
    if spot is not None:
        yield spot
    for value in node.values():
        if isinstance(value, dict | list):
            yield from _spots(value, kind, name)


def _spot(node: dict[str, Any], kind: str, name: str) -> tuple[int, int] | None:
    """(byte offset, length) of `node` if it is the `kind` named `name`."""
    where = node.get("query_location")
    if not isinstance(where, int) or where < 0:
        return None
    length = int(node.get("query_location_length") or 0)
    parts = [str(p).lower() for p in node.get("column_names") or []]
    if kind == "column" and parts and parts[-1] == name:
        return where + max(0, length - len(name)), len(name)  # the name itself in `t.col`
    if kind == "table" and len(parts) > 1 and parts[0] == name:
        return where, len(name)
    if (
        kind == "table"
        and node.get("type") == "BASE_TABLE"
        and str(node.get("table_name", "")).lower() == name
    ):
        return where, length or len(name)
    if (
        kind == "function"
        and node.get("class") in ("FUNCTION", "WINDOW")
        and str(node.get("function_name", "")).lower() == name
    ):
        return where, 1 if node.get("is_operator") else len(name)
    return None


def pattern_error(pattern: str) -> str | None:
    """DuckDB evaluates patterns with RE2, so RE2 decides what is valid."""
    try:
        duckdb.execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as err:
        return str(err).split("\n")[0].removeprefix("Invalid Input Error: ")
    return None
