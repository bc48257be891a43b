"""The SQL that checks need and dialects spell differently, one class per dialect.

Checks build sqlglot expressions; most of them (counts, filters, comparisons, casts) sqlglot
writes in any dialect. What it has no portable expression for (a whole-string regex match,
microseconds since the epoch, a row hash, a bitmap of distinct integers) a `Dialect` builds.
The dialect is the session's (`session.dialect`); adding one is a subclass in `DIALECTS`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, runtime_checkable

import sqlglot
from sqlglot import exp

from meshkit.engines.base import Session
from meshkit.errors import BuildError


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


class DuckDB(Dialect):
    name = "duckdb"

    def full_match(self, text: exp.Expr, pattern: str) -> exp.Expr:
        return exp.Anonymous(
            this="regexp_full_match", expressions=[text, exp.Literal.string(pattern)]
        )

    def epoch_us(self, timestamp: exp.Expr) -> exp.Expr:
        return exp.Anonymous(this="epoch_us", expressions=[timestamp])

    def row_hash(self, values: list[exp.Expr]) -> exp.Expr:
        return exp.Anonymous(this="hash", expressions=values)

    def distinct_bits(self, key: exp.Expr, size: int, where: exp.Expr) -> exp.Expr | None:
        bits = exp.Filter(
            this=exp.Anonymous(
                this="bitstring_agg", expressions=[key, exp.convert(0), exp.convert(size - 1)]
            ),
            expression=exp.Where(this=where),
        )
        return exp.Coalesce(
            this=exp.Anonymous(this="bit_count", expressions=[bits]), expressions=[exp.convert(0)]
        )


DIALECTS: dict[str, type[Dialect]] = {DuckDB.name: DuckDB}


@runtime_checkable
class _Dialected(Protocol):  # until the Session protocol itself declares `dialect`
    dialect: str


def dialect_of(session: Session) -> Dialect:
    """The dialect of a session's engine (`session.dialect`)."""
    name = session.dialect if isinstance(session, _Dialected) else None
    found = DIALECTS.get(name) if name is not None else None
    if found is None:
        raise BuildError(
            f"quality checks cannot be written in the SQL dialect {name!r} of this engine",
            hint=f"the dialects checks know: {', '.join(DIALECTS)}; add a Dialect subclass to "
            "meshkit.builder.quality.dialects.DIALECTS",
        )
    return found()
