"""What a consumer's SQL may be: one SELECT (CTEs, subqueries, UNION allowed) over products.

Checked on sqlglot's AST (in the engine's dialect) before the engine sees anything; the engine
then runs sqlglot's rendering of that same AST (not the text as sent) with external access off
and its configuration locked (see `query.py`), after its own parser has read that text
(`sql.native`: for DuckDB, its guard module in `sql/`).

* The statement is one query: no ATTACH, COPY, INSTALL, LOAD, PRAGMA, SET, DDL, DML, EXPLAIN,
  DESCRIBE, SUMMARIZE.
* Every FROM item is a product the caller can see (`<domain>.<product>`), a subquery, a CTE
  *in scope where it is used* (resolved per scope, as DuckDB does: a name that matches a CTE
  elsewhere in the query is not a CTE here), a PIVOT/UNPIVOT of one of those, or one of the
  `TABLE_FUNCTIONS` (`range`, `generate_series`, `unnest`) with constant arguments: rows made
  from the query's own text, never from data. No other table function anywhere, LATERAL
  included; no file paths, system catalogs (`information_schema`, `pg_catalog`, the engine's own).
* CTEs are not named like a product or domain the caller can see (no shadowing).
* Every function is one the engine knows as a scalar, aggregate or window function or a macro
  that does not read the catalog (an allowlist taken from the engine itself, `sql.functions`,
  so a quoted or re-cased name is the same name), minus those that read settings, variables or
  the environment, sleep, or raise on purpose (`error()`: an oracle on rows a filter hides).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import build_scope

from meshkit.errors import AccessDenied, MeshkitError, NameProducts
from meshkit.sql.functions import CTE_PREFIX, denied_function
from meshkit.sql.native import native
from meshkit.sql.parse import dialect_title, line_column, parse_error


@dataclass(frozen=True)
class Checked:
    """A query that passed: its AST and the products it reads."""

    tree: exp.Query
    products: tuple[str, ...]
    dialect: str


def hint(dialect: str) -> str:
    """The advice given with a refused or unreadable query."""
    return (
        f"write one {dialect_title(dialect)} SELECT; products are tables named <domain>.<product>"
    )


def check(sql: str, products: set[str], *, dialect: str) -> Checked:
    """Parse and check a consumer's query, in `dialect`, against the products the caller can
    see; MeshkitError (bad SQL) or AccessDenied (refused)."""
    advice = hint(dialect)
    tree = _statement_pivot_as_query(_parse(sql, dialect))
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
    name = denied_function(tree, dialect)
    if name is not None:
        raise AccessDenied(
            f"function {name}() is not allowed in queries",
            hint="queries compute over products only: no files, settings, catalog or environment",
        )
    for lateral in tree.find_all(exp.Lateral):
        if not isinstance(lateral.this, exp.Query | exp.Subquery | exp.Unnest):
            raise AccessDenied(
                "LATERAL may join a subquery or UNNEST only, not a table function",
                hint=advice,
            )
    for unnest in tree.find_all(exp.Unnest):
        if isinstance(unnest.parent, exp.From | exp.Join | exp.Lateral):  # a table function
            _constant_arguments("unnest", unnest.expressions, dialect)
    read = _tables(tree, products, dialect)
    return Checked(tree=tree, products=tuple(sorted(read)), dialect=dialect)


def _tables(tree: exp.Query, products: set[str], dialect: str) -> set[str]:
    """The products a query reads; refuse any FROM item that is neither a product nor a CTE
    in scope where it is used.

    Each CTE, and each reference sqlglot resolves to it, is renamed `__meshkit_cte_<n>`: should
    DuckDB resolve a reference differently (its scoping of recursive CTEs is one known case),
    it finds no such table instead of a system view or a file of that name."""
    swapped = _pivot_sources_as_selects(tree)
    renamed: dict[int, str] = {}  # id(exp.CTE) -> its new name
    in_scope: set[int] = set()  # Table nodes that name a CTE visible where they are
    try:
        root = build_scope(tree)
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
                    own = exp.TableAlias(this=exp.to_identifier(table.name, quoted=True))
                    table.set("alias", own)
                table.set("this", exp.to_identifier(name, quoted=True))
                in_scope.add(id(table))
    except (SqlglotError, RecursionError) as err:
        raise AccessDenied("the query's structure cannot be checked", hint=hint(dialect)) from err
    finally:
        _restore_pivots(swapped)
    for cte in tree.find_all(exp.CTE):
        alias = cte.args.get("alias")
        name = renamed.setdefault(id(cte), f"{CTE_PREFIX}{len(renamed) + 1}")
        if isinstance(alias, exp.TableAlias):
            alias.set("this", exp.to_identifier(name, quoted=True))
    read: set[str] = set()
    for table in tree.find_all(exp.Table):
        if id(table) in in_scope:
            continue
        if _is_table_function(table, dialect):
            continue
        read.add(_product_of(table, products, dialect))
    return read


def _is_table_function(table: exp.Table, dialect: str) -> bool:
    """Whether a FROM item is a call of one of `TABLE_FUNCTIONS` (unqualified) with constant
    arguments; refuse such a call with anything else in its arguments.

    sqlglot reads `range(...)` and `generate_series(...)` as `GenerateSeries` (rendered back
    as `RANGE` or `GENERATE_SERIES`, as written); every other function in FROM stays refused
    by `_product_of`."""
    call = table.this
    if not isinstance(call, exp.GenerateSeries):
        return False
    if table.db or table.args.get("catalog"):
        raise AccessDenied(
            f"'{table.sql(dialect=dialect)}': name table functions without a schema",
            hint=hint(dialect),
        )
    name = "range" if call.args.get("is_end_exclusive") else "generate_series"
    arguments = [call.args.get(key) for key in ("start", "end", "step")]
    _constant_arguments(name, [a for a in arguments if isinstance(a, exp.Expr)], dialect)
    return True


# What the arguments of a table function may not hold: anything that reads a row, a table or
# a parameter (a column, a subquery, a `*`, a lambda's variables) or is not a plain value (a
# window, a pivot)
_NOT_CONSTANT = (
    exp.Column,
    exp.Query,
    exp.Subquery,
    exp.Table,
    exp.Star,
    exp.Placeholder,
    exp.Parameter,
    exp.Lambda,
    exp.Window,
    exp.Pivot,
)


def _constant_arguments(name: str, arguments: list[exp.Expr], dialect: str) -> None:
    """Refuse a table function call whose arguments are not constant expressions: its rows
    must come from the query's text alone, never from a product (not even one the caller may
    read: that would be a LATERAL table function), a file or a setting. Named parameters
    (`name := value`) are refused too (those of a scalar function inside, such as
    `struct_pack(a := 1)`, are values)."""
    hint = (
        f"{name}() in FROM takes values written in the query; to expand a column, call "
        "unnest() in the SELECT list instead"
    )
    for argument in arguments:
        if isinstance(argument, exp.PropertyEQ | exp.Kwarg):
            raise AccessDenied(
                f"{name}() in FROM takes no named parameters", hint="pass its arguments by position"
            )
        for node in argument.walk():
            if isinstance(node, _NOT_CONSTANT):
                what = (
                    f"column {node.sql(dialect=dialect)}"
                    if isinstance(node, exp.Column)
                    else f"a {node.key.lower()}"
                )
                raise AccessDenied(
                    f"the arguments of {name}() in FROM must be constants, not {what}", hint=hint
                )


def _statement_pivot_as_query(tree: exp.Expr) -> exp.Expr:
    """A PIVOT or UNPIVOT statement (`PIVOT <source> ON ... USING ...`) as the query
    `SELECT * FROM (<it>)`, with its WITH moved out, so that it is checked like one in a
    subquery; anything else as it is."""
    if not isinstance(tree, exp.Pivot) or tree.this is None:
        return tree
    with_ = tree.args.get("with_")
    tree.set("with_", None)
    query = exp.Select(expressions=[exp.Star()], from_=exp.From(this=exp.Subquery(this=tree)))
    if with_ is not None:
        query.set("with_", with_)
    return query


def _pivot_sources_as_selects(tree: exp.Expr) -> list[tuple[exp.Pivot, exp.Select]]:
    """Put `SELECT * FROM <source>` in place of each PIVOT/UNPIVOT statement in the tree,
    for the time of the scope analysis: sqlglot's scopes do not enter them, and in DuckDB
    their source is read in the scope where they stand, as a subquery's FROM would be.
    `_restore_pivots` puts them back. (The PIVOT of `FROM t PIVOT (...)` hangs on its table
    and needs nothing.)"""
    swapped = []
    for pivot in list(tree.find_all(exp.Pivot)):
        source = pivot.this
        if not isinstance(source, exp.Expr) or pivot.parent is None:
            continue
        stand_in = exp.Select(expressions=[exp.Star()], from_=exp.From(this=source))
        with_ = pivot.args.get("with_")
        if with_ is not None:  # `(WITH c AS (...) PIVOT c ...)`: c is visible in its source
            stand_in.set("with_", with_)
        pivot.replace(stand_in)
        swapped.append((pivot, stand_in))
    return swapped


def _restore_pivots(swapped: list[tuple[exp.Pivot, exp.Select]]) -> None:
    for pivot, stand_in in reversed(swapped):
        source = stand_in.args["from_"].this
        with_ = stand_in.args.get("with_")
        stand_in.replace(pivot)
        pivot.set("this", source)
        if with_ is not None:
            pivot.set("with_", with_)


def render(checked: Checked, max_rows: int, products: set[str]) -> str:
    """The SQL that will run: the checked query, capped at `max_rows` + 1 rows, checked again
    as the engine itself parses that very text.

    sqlglot's rendering is not always the text it parsed (a string argument of some functions
    is printed as SQL). So the rendering must read back as itself, and the text the engine
    runs is checked with its own parser (`NativeSql.check_runnable`; DuckDB's walks its parse
    tree): one statement that keeps its LIMIT; every table a product or a CTE
    the statement defines; no table function but `TABLE_FUNCTIONS` with constant arguments;
    every function in the allowlist; no bare session names. Anything it cannot classify is
    refused, and so is every query in a dialect without a native parser."""
    dialect = checked.dialect
    limited = exp.select(exp.Star()).from_(exp.paren(checked.tree.copy()).as_("q"))
    limited = limited.limit(max_rows + 1)
    sql = _fixed_point(limited, dialect)
    # A PIVOT without IN (...) takes its columns from the data, which an engine may run as
    # more than one statement: its parser checks the same text with the values named, and the
    # text that runs must be exactly that text without them (no other change).
    probe = limited.copy()
    dynamic = _name_pivot_values(probe)
    checked_sql = _fixed_point(probe, dialect) if dynamic else sql
    if dynamic and checked_sql.replace(_PIVOT_PROBE_SQL, "") != sql:
        raise AccessDenied("the query cannot be checked as it would run", hint=hint(dialect))
    support = native(dialect)
    if support is None:
        raise AccessDenied("the query cannot be checked as it would run", hint=hint(dialect))
    support.check_runnable(sql, products, probe=checked_sql if dynamic else None)
    return sql


def _fixed_point(tree: exp.Expr, dialect: str) -> str:
    """sqlglot's rendering of `tree`, which must be a fixed point: text that sqlglot reads back
    into something that renders differently holds SQL that came from inside a string (or a
    comment eating the rest)."""
    sql = tree.sql(dialect=dialect)
    try:
        again = sqlglot.parse_one(sql, dialect=dialect).sql(dialect=dialect)
    except (SqlglotError, RecursionError) as err:
        raise AccessDenied(
            "the query cannot be checked as it would run", hint=hint(dialect)
        ) from err
    if again != sql:
        raise AccessDenied(
            "the query does not read back as written (a string that turns into SQL?)",
            hint=hint(dialect),
        )
    return sql


_PIVOT_PROBE = "__meshkit_pivot_values__"
_PIVOT_PROBE_SQL = f" IN ('{_PIVOT_PROBE}')"


def _name_pivot_values(tree: exp.Expr) -> bool:
    """Give every PIVOT statement column without IN (...) the values `IN ('<probe>')`, in
    place; whether there was one. Such a column must be a plain column name, so that the text
    with and without the values differs only by `_PIVOT_PROBE_SQL` after a name."""
    found = False
    for pivot in tree.find_all(exp.Pivot):
        if pivot.this is None or pivot.args.get("unpivot"):
            continue
        for column in pivot.expressions:
            if isinstance(column, exp.In):
                continue
            if not (
                isinstance(column, exp.Column)
                and isinstance(column.this, exp.Identifier)
                and not column.table
            ):
                raise AccessDenied(
                    "a PIVOT without IN (...) may pivot on column names only",
                    hint="name the values (ON <expression> IN ('a', 'b')), or compute the "
                    "expression as a column in a subquery first",
                )
            column.replace(
                exp.In(this=column.copy(), expressions=[exp.Literal.string(_PIVOT_PROBE)])
            )
            found = True
    return found


def _parse(sql: str, dialect: str) -> exp.Expr:
    advice = hint(dialect)
    if not sql.strip():
        raise MeshkitError("the query is empty", hint="send one SELECT over <domain>.<product>")
    try:
        statements = [s for s in sqlglot.parse(sql, dialect=dialect) if s is not None]
    except RecursionError as err:
        raise AccessDenied("the query is nested too deeply to be checked", hint=advice) from err
    except sqlglot.errors.TokenError as err:
        raise MeshkitError(f"query does not parse: {err}", hint=advice) from err
    except sqlglot.ParseError as err:
        support = native(dialect)  # the engine's parser says what is wrong most plainly
        syntax = support.syntax_error(sql) if support is not None else None
        if syntax is not None:
            message, offset = syntax
            where = ""
            if offset is not None:
                row, col = line_column(sql, offset)
                where = f" (line {row}, column {col})"
            raise MeshkitError(f"query does not parse: {message}{where}", hint=advice) from err
        message, at_line, at_column = parse_error(err)
        where = f" (line {at_line}, column {at_column})" if at_line is not None else ""
        raise MeshkitError(f"query does not parse: {message}{where}", hint=advice) from err
    if len(statements) != 1:
        raise AccessDenied("only a single statement is accepted", hint=advice)
    return statements[0]


def _product_of(table: exp.Table, products: set[str], dialect: str) -> str:
    """The product a FROM item names; refuse anything else."""
    if not isinstance(table.this, exp.Identifier) or table.args.get("catalog"):
        raise AccessDenied(
            f"'{table.sql(dialect=dialect)}' is not a data product: queries read products only",
            hint=hint(dialect),
        )
    if not table.db:
        raise AccessDenied(
            f"{table.name!r} is not a data product, nor a CTE defined where it is used "
            "(recursive CTEs are not supported)",
            hint=hint(dialect),
        )
    # SQL names are case-insensitive, and product ids are lower-case
    pid = f"{table.db}.{table.name}".lower()
    if pid not in products:
        raise AccessDenied(
            f"no access to {pid!r}, or no such product",
            hint=NameProducts(),
        )
    return pid


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):  # sqlglot keeps what it does not model as text
        return str(node.this).upper()
    return node.key.upper()
