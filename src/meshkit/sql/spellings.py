"""The SQL that quality checks need and dialects spell differently: one `Dialect` class each.

Checks build sqlglot expressions; most of them (counts, filters, comparisons, casts) sqlglot
writes in any dialect. What it has no portable expression for (a whole-string regex match,
microseconds since the epoch, a row hash, a bitmap of distinct integers) a `Dialect` builds.
`spelling(name)` finds the class of a dialect in `sql/<dialect>_spellings.py` (its `SPELLING`),
so a new dialect is one module and nothing here names one.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from typing import ClassVar

import sqlglot
from sqlglot import exp


class Dialect(ABC):
    """How checks spell what sqlglot cannot spell for every engine."""

    name: ClassVar[str]  # sqlglot's name of the dialect

    def parse(self, sql: str) -> exp.Expr:
        """A custom check's SQL as written by the user, in this dialect."""
        return sqlglot.parse_one(sql, dialect=self.name)

    def type(self, sql_type: str) -> exp.DataType:
        return exp.DataType.build(sql_type, dialect=self.name)

    def text(self, expression: exp.Expr) -> str:
        """The SQL of an expression (identical aggregates are measured once)."""
        return expression.sql(dialect=self.name)

    @abstractmethod
    def full_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        """True when the whole of `text` matches the (RE2) `pattern`."""

    @abstractmethod
    def epoch_us(self, timestamp: exp.Expr) -> exp.Expr:
        """Microseconds since 1970-01-01 UTC of a TIMESTAMP."""

    @abstractmethod
    def row_hash(self, values: list[exp.Expr]) -> exp.Expr:
        """One integer hash of several values (a composite key counted as one value)."""

    def distinct_bits(self, key: exp.Expr, size: int, where: exp.Expr) -> exp.Expr | None:
        """The number of distinct values of `key` in [0, size) where `where` holds, counted in
        a bitmap; None if the dialect has no bitmap aggregate (keys are then hashed)."""
        return None


def spelling(dialect: str) -> Dialect | None:
    """The spellings of `dialect` (from `meshkit.sql.<dialect>_spellings`), or None."""
    if not dialect.isidentifier():
        return None
    try:
        module = importlib.import_module(f"meshkit.sql.{dialect}_spellings")
    except ModuleNotFoundError:
        return None
    found: type[Dialect] = module.SPELLING
    return found()


def known_spellings() -> list[str]:
    """The dialects that have spellings (a `sql/<dialect>_spellings.py` module)."""
    here = importlib.import_module("meshkit.sql")
    suffix = "_spellings"
    return sorted(
        info.name.removesuffix(suffix)
        for info in pkgutil.iter_modules(here.__path__)
        if info.name.endswith(suffix)
    )
