"""What a consumer's SQL may be: one SELECT (CTEs, subqueries, UNION allowed) over products.

Checked on sqlglot's AST before DuckDB sees anything, and again by DuckDB's own lock-down
(external access off, configuration locked; see `query.py`): either alone refuses file reads.

Refused: any statement that is not a query (ATTACH, COPY, INSTALL, LOAD, PRAGMA, SET, DDL,
DML, EXPLAIN, DESCRIBE, SUMMARIZE); table functions and file paths in FROM (`read_csv(...)`,
`'/etc/passwd'`, globs); tables that are not `<domain>.<product>` (system catalogs,
`information_schema`, `duckdb_*`); CTEs named like a product or domain (no shadowing); and
functions that read the environment, files or settings, or raise on purpose (`error()`:
an oracle on rows a filter hides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from meshkit.errors import AccessDenied, MeshkitError
from meshkit.spec.validate import duckdb_syntax_error, line_column, parse_error

DIALECT = "duckdb"

# Functions a query may not call. Table functions cannot appear at all (FROM items must be
# products); these are the scalar ones that reach outside the data or leak through errors.
_DENIED = re.compile(
    r"^(read_\w*|\w*_scan|glob|getenv|current_setting|getvariable|set_variable|duckdb_\w*"
    r"|pragma_\w*|query|query_table|sniff_csv|parquet_\w*|error|which_secret|load_\w*"
    r"|install_\w*|json_execute_serialized_sql|\w*_metadata|\w*_file\w*|stats)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Checked:
    """A query that passed: its AST and the products it reads."""

    tree: exp.Query
    products: tuple[str, ...]


def check(sql: str, products: set[str]) -> Checked:
    """Parse and check a consumer's query; MeshkitError (bad SQL) or AccessDenied (refused)."""
    tree = _parse(sql)
    if not isinstance(tree, exp.Query):
        raise AccessDenied(
            f"only a single SELECT is accepted, not {_kind(tree)}",
            hint="products are read-only; write one SELECT (WITH ... and UNION allowed)",
        )
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = {p.split(".", 1)[1].lower() for p in products} | {
        p.split(".", 1)[0].lower() for p in products
    }
    for cte in sorted(ctes & names):
        raise AccessDenied(
            f"the CTE {cte!r} has the name of a product or domain",
            hint="rename the CTE: a CTE may not shadow a data product",
        )
    read: list[str] = []
    for table in tree.find_all(exp.Table):
        read.append(_product_of(table, ctes, products))
    name = denied_function(tree)
    if name is not None:
        raise AccessDenied(
            f"function {name}() is not allowed in queries",
            hint="queries compute over products only: no files, settings or environment",
        )
    for node in tree.find_all(exp.Command, exp.Pragma, exp.Set, exp.Use):
        raise AccessDenied(f"{_kind(node)} is not allowed in queries")
    return Checked(tree=tree, products=tuple(sorted({p for p in read if p})))


def denied_function(tree: exp.Expr) -> str | None:
    """The first function in `tree` that queries may not call, lower-cased."""
    for node in tree.find_all(exp.Func):
        name = str(node.this) if isinstance(node, exp.Anonymous) else node.sql_name()
        if _DENIED.match(name):
            return name.lower()
    return None


def _parse(sql: str) -> exp.Expr:
    if not sql.strip():
        raise MeshkitError("the query is empty", hint="send one SELECT over <domain>.<product>")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=DIALECT) if s is not None]
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


def _product_of(table: exp.Table, ctes: set[str], products: set[str]) -> str:
    """The product a FROM item names ('' for a CTE reference); refuse anything else."""
    if not isinstance(table.this, exp.Identifier) or table.args.get("catalog"):
        raise AccessDenied(
            f"'{table.sql(dialect=DIALECT)}' is not a data product: queries read products only",
            hint=_HINT,
        )
    if not table.db and table.name.lower() in ctes:
        return ""
    # DuckDB's names are case-insensitive, and product ids are lower-case
    pid = (f"{table.db}.{table.name}" if table.db else table.name).lower()
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
