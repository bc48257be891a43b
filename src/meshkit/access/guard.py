"""What a consumer's SQL may be: one SELECT (CTEs, subqueries, UNION allowed) over products.

Checked on sqlglot's AST before DuckDB sees anything; DuckDB then runs sqlglot's rendering of
that same AST (not the text as sent) with external access off and its configuration locked
(see `query.py`).

* The statement is one query: no ATTACH, COPY, INSTALL, LOAD, PRAGMA, SET, DDL, DML, EXPLAIN,
  DESCRIBE, SUMMARIZE.
* Every FROM item is a product the caller can see (`<domain>.<product>`), a subquery, or a CTE
  *in scope where it is used* (resolved per scope, as DuckDB does: a name that matches a CTE
  elsewhere in the query is not a CTE here). No table functions anywhere, LATERAL included; no
  file paths, system catalogs (`information_schema`, `duckdb_*`, `pg_catalog`).
* CTEs are not named like a product or domain the caller can see (no shadowing).
* Every function is one DuckDB knows as a scalar, aggregate or window function or a macro of
  its `main` schema that does not read the catalog (an allowlist taken from DuckDB itself, so a
  quoted or re-cased name is the same name), minus those that read settings, variables or the
  environment, sleep, or raise on purpose (`error()`: an oracle on rows a filter hides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import build_scope

from meshkit.errors import AccessDenied, MeshkitError
from meshkit.spec.validate import duckdb_parse, duckdb_syntax_error, line_column, parse_error

DIALECT = "duckdb"

# Known functions a query still may not call: they reach outside the data (settings,
# variables, environment, files, the catalog), sleep, or leak through errors or statistics.
_DENIED = re.compile(
    r"^(read_\w*|\w*_scan|glob|getenv|current_(setting|query|database|schema|schemas|catalog|role|user)"
    r"|getvariable|set_variable|duckdb_\w*|pragma_\w*|query|query_table|sniff_csv|parquet_\w*"
    r"|error|which_secret|load_\w*|install_\w*|json_execute_serialized_sql|\w*_metadata"
    r"|\w*_file\w*|stats|sleep_ms|pg_\w*|\w*_privilege|\w*_description|has_\w*|enable_\w*"
    r"|disable_\w*|checkpoint|\w*external_resource\w*|\w*_secret\w*|\w*_log\w*|version"
    r"|platform|txid_current|current_localtime|json_serialize_\w*|json_deserialize_\w*"
    r"|\w*_plan|assert_\w*|in_search_path|index_key|nextval|currval|setval|__internal_\w*"
    r"|current_query_id|current_connection_id|current_transaction_id|session_user)$",
    re.IGNORECASE,
)
# A macro whose body reads the catalog or runs a query is not a plain function
_CATALOG_MACRO = re.compile(r"select|duckdb_|information_schema|current_|pg_|query", re.IGNORECASE)


@cache
def allowed_functions() -> frozenset[str]:
    """Lower-case names of the functions queries may call, from DuckDB's own catalog."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute(
            "SELECT function_name, function_type, coalesce(macro_definition, '') "
            "FROM duckdb_functions() WHERE schema_name = 'main' "
            "AND function_type IN ('scalar', 'aggregate', 'window', 'macro')"
        ).fetchall()
    finally:
        con.close()
    return _SPECIAL | frozenset(
        str(name).lower()
        for name, kind, body in rows
        if not _DENIED.match(str(name))
        and not (kind == "macro" and _CATALOG_MACRO.search(str(body)))
    )


# Functions DuckDB's parser knows that its function catalog does not list
_SPECIAL = frozenset({"unnest", "unlist", "grouping", "grouping_id", "coalesce", "ifnull"})


@dataclass(frozen=True)
class Checked:
    """A query that passed: its AST and the products it reads."""

    tree: exp.Query
    products: tuple[str, ...]


def check(sql: str, products: set[str]) -> Checked:
    """Parse and check a consumer's query against the products the caller can see;
    MeshkitError (bad SQL) or AccessDenied (refused)."""
    tree = _parse(sql)
    if not isinstance(tree, exp.Query):
        raise AccessDenied(
            f"only a single SELECT is accepted, not {_kind(tree)}",
            hint="products are read-only; write one SELECT (WITH ... and UNION allowed)",
        )
    for node in tree.find_all(
        exp.Command, exp.Pragma, exp.Set, exp.Use, exp.Describe, exp.Summarize, exp.Show
    ):
        raise AccessDenied(f"{_kind(node)} is not allowed in queries")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = {p.split(".", 1)[1].lower() for p in products} | {
        p.split(".", 1)[0].lower() for p in products
    }
    for cte in sorted(ctes & names):
        raise AccessDenied(
            f"the CTE {cte!r} has the name of a product or domain",
            hint="rename the CTE: a CTE may not shadow a data product",
        )
    name = denied_function(tree)
    if name is not None:
        raise AccessDenied(
            f"function {name}() is not allowed in queries",
            hint="queries compute over products only: no files, settings, catalog or environment",
        )
    for lateral in tree.find_all(exp.Lateral):
        if not isinstance(lateral.this, exp.Query | exp.Subquery | exp.Unnest):
            raise AccessDenied(
                "LATERAL may join a subquery or UNNEST only, not a table function",
                hint=_HINT,
            )
    read = _tables(tree, products)
    return Checked(tree=tree, products=tuple(sorted(read)))


def _tables(tree: exp.Query, products: set[str]) -> set[str]:
    """The products a query reads; refuse any FROM item that is neither a product nor a CTE
    in scope where it is used.

    Each CTE, and each reference sqlglot resolves to it, is renamed `__meshkit_cte_<n>`: should
    DuckDB resolve a reference differently (its scoping of recursive CTEs is one known case),
    it finds no such table instead of a system view or a file of that name."""
    try:
        root = build_scope(tree)
    except (SqlglotError, RecursionError) as err:
        raise AccessDenied("the query's structure cannot be checked", hint=_HINT) from err
    renamed: dict[int, str] = {}  # id(exp.CTE) -> its new name
    in_scope: set[int] = set()  # Table nodes that name a CTE visible where they are
    for scope in root.traverse() if root is not None else []:
        visible = {name.lower(): source for name, source in scope.cte_sources.items()}
        for table in scope.tables:
            source = visible.get(table.name.lower())
            if table.db or table.args.get("catalog") or source is None:
                continue
            cte = source.expression.parent
            if not isinstance(cte, exp.CTE) or not isinstance(table.this, exp.Identifier):
                continue
            name = renamed.setdefault(id(cte), f"{CTE_PREFIX}{len(renamed) + 1}")
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name, quoted=True)))
            table.set("this", exp.to_identifier(name, quoted=True))
            in_scope.add(id(table))
    for cte in tree.find_all(exp.CTE):
        alias = cte.args.get("alias")
        name = renamed.setdefault(id(cte), f"{CTE_PREFIX}{len(renamed) + 1}")
        if isinstance(alias, exp.TableAlias):
            alias.set("this", exp.to_identifier(name, quoted=True))
    read: set[str] = set()
    for table in tree.find_all(exp.Table):
        if id(table) not in in_scope:
            read.add(_product_of(table, products))
    return read


CTE_PREFIX = "__meshkit_cte_"


def render(checked: Checked, max_rows: int, products: set[str]) -> str:
    """The SQL that will run: the checked query, capped at `max_rows` + 1 rows, checked again
    as DuckDB itself parses that very text.

    sqlglot's rendering is not always the text it parsed (a string argument of some functions
    is printed as SQL). So the rendering must read back as itself, and the text DuckDB runs is
    checked with DuckDB's own parser: one statement that keeps its LIMIT; every table a product
    or a CTE the statement defines; no table functions; every function in
    `allowed_functions()`; no bare session names. Anything it cannot classify is refused."""
    limited = exp.select(exp.Star()).from_(exp.paren(checked.tree.copy()).as_("q"))
    sql = limited.limit(max_rows + 1).sql(dialect=DIALECT)
    # The rendering must be a fixed point: text that sqlglot reads back into something that
    # renders differently holds SQL that came from inside a string (or a comment eating the rest).
    try:
        again = sqlglot.parse_one(sql, dialect=DIALECT).sql(dialect=DIALECT)
    except (SqlglotError, RecursionError) as err:
        raise AccessDenied("the query cannot be checked as it would run", hint=_HINT) from err
    if again != sql:
        raise AccessDenied(
            "the query does not read back as written (a string that turns into SQL?)", hint=_HINT
        )
    parsed = duckdb_parse(sql)
    if parsed is None or parsed.get("error") or len(parsed.get("statements", [])) != 1:
        raise AccessDenied("the query cannot be checked as it would run", hint=_HINT)
    statement = parsed["statements"][0]
    modifiers = statement.get("node", {}).get("modifiers", [])
    if not any(m.get("type") == "LIMIT_MODIFIER" for m in modifiers if isinstance(m, dict)):
        raise AccessDenied("the query escapes its row limit", hint=_HINT)
    ctes = set(_cte_names(statement))
    _check_duckdb_tree(statement, {p.lower() for p in products}, ctes)
    return sql


def _cte_names(node: object) -> list[str]:
    """Every CTE name a DuckDB parse tree defines (keys of its `cte_map`s)."""
    found: list[str] = []
    if isinstance(node, list):
        for item in node:
            found += _cte_names(item)
    elif isinstance(node, dict):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            found += [str(e.get("key")) for e in cte_map.get("map", []) if isinstance(e, dict)]
        for value in node.values():
            if isinstance(value, dict | list):
                found += _cte_names(value)
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


def _check_duckdb_tree(node: object, products: set[str], ctes: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _check_duckdb_tree(item, products, ctes)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if node.get("class") == "COLUMN_REF":
        names = node.get("column_names") or []
        if len(names) == 1 and str(names[0]).lower() in _SESSION_NAMES:
            raise AccessDenied(f"{names[0]} is not allowed in queries", hint=_HINT)
    if node.get("class") in ("FUNCTION", "WINDOW"):
        name = str(node.get("function_name", "")).lower()
        qualified = node.get("catalog") or node.get("schema") not in (None, "", "main")
        if qualified or (not node.get("is_operator") and name not in allowed_functions()):
            raise AccessDenied(
                f"function {name}() is not allowed in queries",
                hint="queries compute over products only: no files, settings, catalog or environment",
            )
    elif "class" not in node and "alias" in node and "sample" in node:  # a FROM item
        if kind not in _TABLE_REFS:
            raise AccessDenied(
                f"{str(kind).lower().replace('_', ' ')} is not allowed in queries", hint=_HINT
            )
        if kind == "BASE_TABLE" and node.get("at_clause"):
            raise AccessDenied(
                "AT (VERSION => ...) is not allowed: ask for `version` or `as_of` instead",
                hint="POST /query takes version and as_of",
            )
        if kind == "BASE_TABLE":
            schema = str(node.get("schema_name", "")).lower()
            table = str(node.get("table_name", "")).lower()
            name = str(node.get("table_name", ""))
            cte = not schema and _CTE_NAME.fullmatch(name) is not None and name in ctes
            if node.get("catalog_name") or not (cte or f"{schema}.{table}" in products):
                raise AccessDenied(
                    f"no access to {f'{schema}.{table}' if schema else table!r}, or no such product",
                    hint=_HINT,
                )
    for value in node.values():
        if isinstance(value, dict | list):
            _check_duckdb_tree(value, products, ctes)


def denied_function(tree: exp.Expr) -> str | None:
    """The first function in `tree` that queries may not call, lower-cased.

    Functions sqlglot does not model (`exp.Anonymous`) must be in `allowed_functions()`;
    modelled ones are standard functions, checked against the deny list by DuckDB name."""
    allowed = allowed_functions()
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.AnonymousAggFunc | exp.CombinedAggFunc):
            return node.name.lower() or node.sql_name().lower()  # a function named by a string
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()  # the identifier without quotes: DuckDB ignores case
            if name not in allowed:
                return name
        else:
            name = node.sql_name().lower()
            if _DENIED.match(name):
                return name
    return None


def _parse(sql: str) -> exp.Expr:
    if not sql.strip():
        raise MeshkitError("the query is empty", hint="send one SELECT over <domain>.<product>")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
    except RecursionError as err:
        raise AccessDenied("the query is nested too deeply to be checked", hint=_HINT) from err
    except sqlglot.errors.TokenError as err:
        raise MeshkitError(f"query does not parse: {err}", hint=_HINT) from err
    except sqlglot.ParseError as err:
        syntax = duckdb_syntax_error(sql)  # DuckDB's parser says what is wrong most plainly
        if syntax is not None:
            message, offset = syntax
            where = ""
            if offset is not None:
                row, col = line_column(sql, offset)
                where = f" (line {row}, column {col})"
            raise MeshkitError(f"query does not parse: {message}{where}", hint=_HINT) from err
        message, at_line, at_column = parse_error(err)
        where = f" (line {at_line}, column {at_column})" if at_line is not None else ""
        raise MeshkitError(f"query does not parse: {message}{where}", hint=_HINT) from err
    if len(statements) != 1:
        raise AccessDenied("only a single statement is accepted", hint=_HINT)
    return statements[0]


def _product_of(table: exp.Table, products: set[str]) -> str:
    """The product a FROM item names; refuse anything else."""
    if not isinstance(table.this, exp.Identifier) or table.args.get("catalog"):
        raise AccessDenied(
            f"'{table.sql(dialect=DIALECT)}' is not a data product: queries read products only",
            hint=_HINT,
        )
    if not table.db:
        raise AccessDenied(
            f"{table.name!r} is not a data product, nor a CTE defined where it is used "
            "(recursive CTEs are not supported)",
            hint=_HINT,
        )
    # DuckDB's names are case-insensitive, and product ids are lower-case
    pid = f"{table.db}.{table.name}".lower()
    if pid not in products:
        raise AccessDenied(
            f"no access to {pid!r}, or no such product",
            hint="name products as <domain>.<product>; GET /products lists what you can see",
        )
    return pid


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):  # sqlglot keeps what it does not model as text
        return str(node.this).upper()
    return node.key.upper()


_HINT = "write one DuckDB SELECT; products are tables named <domain>.<product>"
