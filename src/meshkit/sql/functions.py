"""What a consumer's query may call, in any dialect: the dialect's allowlist of functions (from
its native catalog, `sql.native`) and the few table functions that make rows from their
arguments alone. Without a native catalog nothing sqlglot does not model may be called."""

from __future__ import annotations

from sqlglot import exp

from meshkit.sql.native import native

# The table functions a FROM may call: each makes rows from its arguments alone (no file, no
# catalog, no setting), and its arguments must be constant (see the guard's
# `_constant_arguments`), so what it returns is a function of the query's text. The engine's
# other table functions stay refused.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

CTE_PREFIX = "__meshkit_cte_"
"""The query guard renames every CTE `<prefix><n>`; the second layer knows them by it."""


def allowed_functions(dialect: str) -> frozenset[str]:
    """Lower-case names of the functions queries may call in `dialect` (none without a
    native catalog)."""
    support = native(dialect)
    return support.allowed_functions() if support is not None else frozenset()


def denied_function(tree: exp.Expr, dialect: str) -> str | None:
    """The first function in `tree` that queries may not call, lower-cased.

    Functions sqlglot does not model (`exp.Anonymous`) must be in `allowed_functions()`;
    modelled ones are standard functions, checked against the dialect's deny list by name."""
    support = native(dialect)
    allowed = support.allowed_functions() if support is not None else frozenset()
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.AnonymousAggFunc | exp.CombinedAggFunc):
            return node.name.lower() or node.sql_name().lower()  # a function named by a string
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()  # the identifier without quotes: names ignore case
            if name not in allowed:
                return name
        else:
            name = node.sql_name().lower()
            if support is None or support.denied(name):
                return name
    return None
