"""A dialect's own parser and function catalog: what meshkit asks beyond sqlglot's reading.

sqlglot reads every dialect, leniently; the engine that runs the SQL decides what it means. A
dialect whose engine can tell (a syntax error as its parser reports it, the functions it has,
its reading of the very text that will run) has a module `meshkit.sql.<dialect>_native` with a
`NATIVE` object that satisfies `NativeSql`. `native()` finds it by the dialect's name; a dialect
without one gets None, and its callers fall back to sqlglot alone or refuse (the query guard
fails closed).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection, Sequence
from functools import cache
from typing import Protocol, runtime_checkable

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Spot = tuple[int, int]
"""(character offset, length) of something in SQL text."""


@runtime_checkable
class NativeSql(Protocol):
    """What a dialect's own parser and catalog say about SQL text (never running it)."""

    def prepare(self, sqls: Sequence[str]) -> None:
        """Parse many texts ahead of use, at once where that is cheaper."""
        ...

    def syntax_error(self, sql: str) -> tuple[str, int | None] | None:
        """(message, character offset) of the syntax error in `sql`, or None."""
        ...

    def reads(self, sql: str) -> tuple[set[str], set[str]] | None:
        """(tables read, CTE names), lower-case, of `sql` when it is one plain SELECT that
        reads only unqualified tables; None otherwise (sqlglot's reading explains what)."""
        ...

    def locate(self, sql: str, kind: str, name: str) -> Spot | None:
        """Where the first `kind` ("column", "table", "function") named `name` is in `sql`."""
        ...

    def check_runnable(self, sql: str, products: Collection[str], *, probe: str | None) -> None:
        """Refuse (AccessDenied) unless `sql`, as the engine's parser reads it, is one SELECT
        that keeps its LIMIT, reads only `products` and its own CTEs, calls only allowed
        functions and table functions with constant arguments. `probe`: the same text with
        the values of each dynamic PIVOT named, checked in its place."""
        ...

    def allowed_functions(self) -> frozenset[str]:
        """Lower-case names of the functions a consumer's query may call."""
        ...

    def denied(self, name: str) -> bool:
        """Whether a function sqlglot models (`exp.Func`) may not be called, by its name."""
        ...

    def pattern_error(self, pattern: str) -> str | None:
        """Why the engine would refuse `pattern` as a regular expression, or None."""
        ...


@cache
def native(dialect: str) -> NativeSql | None:
    """The native support of `dialect` (see the module docstring), or None."""
    if not _NAME.match(dialect):
        return None
    module_name = f"{__package__}.{dialect}_native"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        return None
    found = getattr(module, "NATIVE", None)
    return found if isinstance(found, NativeSql) else None
