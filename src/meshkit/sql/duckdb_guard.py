"""The query guard's second layer: the text that will run, as DuckDB's own parser reads it.

sqlglot checked its own reading of the query (`guard.check`); DuckDB runs sqlglot's rendering
of it, and a rendering is not always read by DuckDB as sqlglot read it. So the parse tree that
DuckDB makes of the very text that runs (`json_serialize_sql`) is walked here, and anything in
it that is not a product, a CTE of the statement, a subquery, a PIVOT of those or an allowed
table function with constant arguments, or that calls a function outside the allowlist, is
refused. Whatever cannot be classified is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from meshkit.errors import AccessDenied, TimeTravel
from meshkit.sql.duckdb_functions import allowed_functions
from meshkit.sql.duckdb_parser import parse, statement_types
from meshkit.sql.functions import CTE_PREFIX, TABLE_FUNCTIONS

HINT = "write one DuckDB SELECT; products are tables named <domain>.<product>"


def check_runnable(sql: str, products: Collection[str], *, probe: str | None = None) -> None:
    """Refuse unless DuckDB reads `sql` as one SELECT that keeps its LIMIT and whose tree
    passes `check_tree`. A PIVOT without IN (...) takes its columns from the data: DuckDB runs
    it as two statements (an ENUM of the values, then the query), which json_serialize_sql
    cannot show; so `probe`, the same text with the values named, is what is walked."""
    if statement_types(sql) != ["MULTI" if probe is not None else "SELECT"]:
        raise AccessDenied("the query cannot be checked as it would run", hint=HINT)
    parsed = parse(probe if probe is not None else sql)
    if parsed is None or parsed.get("error") or len(parsed.get("statements", [])) != 1:
        raise AccessDenied("the query cannot be checked as it would run", hint=HINT)
    statement = parsed["statements"][0]
    modifiers = statement.get("node", {}).get("modifiers", [])
    if not any(m.get("type") == "LIMIT_MODIFIER" for m in modifiers if isinstance(m, dict)):
        raise AccessDenied("the query escapes its row limit", hint=HINT)
    ctes = set(cte_names(statement))
    check_tree(statement, {p.lower() for p in products}, ctes)


def cte_names(node: object) -> list[str]:
    """Every CTE name a DuckDB parse tree defines (keys of its `cte_map`s)."""
    found: list[str] = []
    if isinstance(node, list):
        for item in node:
            found += cte_names(item)
    elif isinstance(node, dict):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            found += [str(e.get("key")) for e in cte_map.get("map", []) if isinstance(e, dict)]
        for value in node.values():
            if isinstance(value, dict | list):
                found += cte_names(value)
    return found


# Column references DuckDB's binder turns into session functions
_SESSION_NAMES = frozenset(
    {
        "current_catalog",
        "current_schema",
        "current_role",
        "current_user",
        "session_user",
        "user",
        "current_database",
    }
)
_CTE_NAME = re.compile(rf"{CTE_PREFIX}\d+")
# The FROM items (table references) a query may have in DuckDB's parse tree
_TABLE_REFS = frozenset({"BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT"})


def check_tree(node: object, products: set[str], ctes: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            check_tree(item, products, ctes)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if node.get("class") == "COLUMN_REF":
        names = node.get("column_names") or []
        if len(names) == 1 and str(names[0]).lower() in _SESSION_NAMES:
            raise AccessDenied(f"{names[0]} is not allowed in queries", hint=HINT)
    if node.get("class") in ("FUNCTION", "WINDOW"):
        name = str(node.get("function_name", "")).lower()
        qualified = node.get("catalog") or node.get("schema") not in (None, "", "main")
        if qualified or (not node.get("is_operator") and name not in allowed_functions()):
            raise AccessDenied(
                f"function {name}() is not allowed in queries",
                hint="queries compute over products only: no files, settings, catalog or environment",
            )
    elif "class" not in node and "alias" in node and "sample" in node:  # a FROM item
        if kind == "TABLE_FUNCTION":
            _check_table_function(node.get("function"))
        elif kind not in _TABLE_REFS:
            raise AccessDenied(
                f"{str(kind).lower().replace('_', ' ')} is not allowed in queries", hint=HINT
            )
        if kind == "BASE_TABLE" and node.get("at_clause"):
            raise AccessDenied(
                "AT (VERSION => ...) is not allowed: ask for `version` or `as_of` instead",
                hint=TimeTravel(),
            )
        if kind == "BASE_TABLE":
            schema = str(node.get("schema_name", "")).lower()
            table = str(node.get("table_name", "")).lower()
            name = str(node.get("table_name", ""))
            cte = not schema and _CTE_NAME.fullmatch(name) is not None and name in ctes
            if node.get("catalog_name") or not (cte or f"{schema}.{table}" in products):
                raise AccessDenied(
                    f"no access to {f'{schema}.{table}' if schema else table!r}, or no such product",
                    hint=HINT,
                )
    for value in node.values():
        if isinstance(value, dict | list):
            check_tree(value, products, ctes)


# What the arguments of an allowed table function may be made of, in DuckDB's parse tree:
# values, operators, casts and functions (each function checked against the allowlist as
# everywhere else); no column, subquery, star, parameter, lambda or window
_CONSTANT_CLASSES = frozenset(
    {
        "CONSTANT",
        "FUNCTION",
        "CAST",
        "OPERATOR",
        "COMPARISON",
        "CONJUNCTION",
        "CASE",
        "BETWEEN",
        "TYPE",
    }
)


def _check_table_function(function: object) -> None:
    """A TABLE_FUNCTION in DuckDB's tree: one of `TABLE_FUNCTIONS`, unqualified, with
    positional arguments made of `_CONSTANT_CLASSES` only."""
    if not isinstance(function, dict) or function.get("class") != "FUNCTION":
        raise AccessDenied("table function is not allowed in queries", hint=HINT)
    name = str(function.get("function_name", "")).lower()
    if (
        name not in TABLE_FUNCTIONS
        or function.get("catalog")
        or function.get("schema")
        or function.get("distinct")
        or function.get("filter") is not None
        or (function.get("order_bys") or {}).get("orders")
    ):
        raise AccessDenied(
            f"table function {name}() is not allowed in queries",
            hint="FROM may call range(), generate_series() and unnest() with constant arguments; "
            "everything else reads products",
        )
    arguments = function.get("arguments")
    if not isinstance(arguments, list):
        raise AccessDenied("the query cannot be checked as it would run", hint=HINT)
    for argument in arguments:
        if not isinstance(argument, dict) or argument.get("name"):
            raise AccessDenied(
                f"{name}() in FROM takes no named parameters", hint="pass its arguments by position"
            )
        if not _constant(argument.get("expression")):
            raise AccessDenied(
                f"the arguments of {name}() in FROM must be constants",
                hint=f"{name}() in FROM takes values written in the query; to expand a "
                "column, call unnest() in the SELECT list instead",
            )


def _constant(node: object) -> bool:
    """Whether every expression in a DuckDB parse (sub)tree is of `_CONSTANT_CLASSES`."""
    if isinstance(node, list):
        return all(_constant(item) for item in node)
    if not isinstance(node, dict):
        return True
    if "class" in node and node["class"] not in _CONSTANT_CLASSES:
        return False
    return all(_constant(value) for value in node.values() if isinstance(value, dict | list))
