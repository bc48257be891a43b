"""The built-in checks: the contract's own (not null, unique, primary key) and the declared
types row_count, null_fraction, unique, accepted_values, range, pattern and freshness (custom
`sql` checks are in `custom.py`).

Each is one class: the aggregates that measure it (mostly `count(*) FILTER (WHERE ...)`, so
they share the one scan), what Parquet footer statistics prove without a scan (row counts, NULL
counts, range bounds that hold, the newest timestamp), and the judgement with its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlglot import exp

from meshkit.builder.footers import FooterStats
from meshkit.builder.quality.base import (
    Check,
    Declared,
    RowCheck,
    Target,
    Verdict,
    bounds,
    col,
    count_where,
    distinct_where,
    is_null,
    pct,
    register,
    staged,
)
from meshkit.specs.checks import (
    AcceptedValuesCheck,
    FreshnessCheck,
    NullFractionCheck,
    PatternCheck,
    RangeCheck,
    RowCountCheck,
    UniqueCheck,
)
from meshkit.specs.mesh import Product
from meshkit.specs.models import Severity, format_duration

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BITMAP_BITS = 1 << 30  # 128 MiB of bitmap at most
BITMAP_DENSITY = 64  # and at most 64 bits per row: sparse keys are cheaper to hash


def _null_count(column: str, stats: FooterStats) -> list[Any] | None:
    found = stats.column(column)
    return None if found is None or found.null_count is None else [found.null_count]


class NotNull(Check):
    """The contract's `nullable: false` (and every primary key column)."""

    type = "not_null"

    def __init__(self, column: str, target: Target) -> None:
        super().__init__(
            name=f"contract:not_null:{column}",
            column=column,
            severity=Severity.ERROR,
            target=target,
        )
        self._column = column

    def aggregates(self) -> list[exp.Expr]:
        return [count_where(is_null(self._column))]

    def failing_rows(self) -> exp.Expr:
        return is_null(self._column)

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        return _null_count(self._column, stats)

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        nulls = int(values[0])
        column = self._column
        if nulls == 0:
            return Verdict(True, nulls, 0, f"{column} has no NULLs")
        return Verdict(
            False, nulls, 0, f"{column} is declared not nullable but has {nulls} NULL(s)"
        )


@register(UniqueCheck)
class Unique(Declared[UniqueCheck]):
    """Duplicates = non-NULL keys - distinct keys. Composite keys are hashed into one value
    (one hash table instead of a struct one); a hash collision can only look like a duplicate,
    so a failure is confirmed with the exact distinct count before it is reported. Keys with a
    NULL part are not compared (SQL semantics), so they are not counted. The contract's unique
    columns and primary key are unique checks too."""

    def __init__(self, spec: UniqueCheck, target: Target) -> None:
        super().__init__(spec, target)
        self.keys = [target.name(c) for c in spec.columns]
        self.column = ", ".join(self.keys)

    def _complete(self) -> exp.Expr:
        return exp.and_(*(exp.not_(is_null(c)) for c in self.keys))

    def aggregates(self) -> list[exp.Expr]:
        if len(self.keys) == 1:
            distinct: exp.Expr = exp.Count(this=exp.Distinct(expressions=[col(self.keys[0])]))
        else:
            hashed = self.sql.row_hash([col(c) for c in self.keys])
            distinct = distinct_where(hashed, self._complete())
        return [count_where(self._complete()), distinct]

    def confirm(self) -> list[exp.Expr] | None:
        if len(self.keys) == 1:
            return None
        key = exp.Tuple(expressions=[col(c) for c in self.keys])
        return [count_where(self._complete()), distinct_where(key, self._complete())]

    def specialize(self, stats: FooterStats) -> list[exp.Expr] | None:
        packed = _packed_key(self.keys, stats)
        if packed is None:
            return None
        key, size = packed
        bits = self.sql.distinct_bits(key, size, self._complete())
        return None if bits is None else [count_where(self._complete()), bits]

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        duplicates = int(values[0]) - int(values[1])
        if duplicates == 0:
            return Verdict(True, 0, 0, f"({self.column}) is unique")
        return Verdict(False, duplicates, 0, f"({self.column}) has {duplicates} duplicate row(s)")

    def sample_query(self, shown: Sequence[str]) -> exp.Select | None:
        """Every row of a duplicated key (not only the second one)."""
        keys = [col(c) for c in self.keys]
        duplicated = (
            exp.select(*keys)
            .from_(staged())
            .group_by(*keys)
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.convert(1)))
        )
        key = keys[0] if len(keys) == 1 else exp.Tuple(expressions=keys)
        return (
            exp.select(*map(col, shown))
            .from_(staged())
            .where(exp.In(this=key.copy(), query=exp.Subquery(this=duplicated)))
        )


def _packed_key(columns: Sequence[str], stats: FooterStats) -> tuple[exp.Expr, int] | None:
    """Integer keys with exact bounds pack into one integer in [0, size): distinct keys are then
    set bits of a bitmap, exact and several times cheaper than hashing."""
    ranges: list[tuple[int, int]] = []
    for column in columns:
        found = stats.column(column)
        if found is None or not found.exact_range or found.min is None:
            return None
        low, high = found.min, found.max
        if isinstance(low, bool) or not (isinstance(low, int) and isinstance(high, int)):
            return None
        ranges.append((low, high))
    size = 1
    for low, high in ranges:
        size *= high - low + 1
    if size > MAX_BITMAP_BITS or size > max(BITMAP_DENSITY * stats.rows, 1 << 20):
        return None
    key: exp.Expr | None = None
    stride = 1
    for column, (low, high) in reversed(list(zip(columns, ranges, strict=True))):
        offset = exp.paren(  # sqlglot does not add precedence parentheses itself
            exp.Sub(
                this=exp.cast(col(column), exp.DataType.build("BIGINT")),
                expression=exp.convert(low),
            )
        )
        term: exp.Expr = (
            offset if stride == 1 else exp.Mul(this=offset, expression=exp.convert(stride))
        )
        key = term if key is None else exp.Add(this=term, expression=key)
        stride *= high - low + 1
    assert key is not None
    return key, size


@register(RowCountCheck)
class RowCount(Declared[RowCountCheck]):
    """Rows are counted anyway (or read from the footers): nothing to add to the scan."""

    def aggregates(self) -> list[exp.Expr]:
        return []

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        return []

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        low, high = self.spec.min, self.spec.max
        ok = (low is None or rows >= low) and (high is None or rows <= high)
        expected = bounds(low, high)
        return Verdict(ok, rows, expected, f"{rows} rows; expected {expected}")


@register(NullFractionCheck)
class NullFraction(Declared[NullFractionCheck]):
    def aggregates(self) -> list[exp.Expr]:
        return [count_where(is_null(self._column))]

    @property
    def _column(self) -> str:
        return self.target.name(self.spec.column)

    def failing_rows(self) -> exp.Expr:
        return is_null(self._column)

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        return _null_count(self._column, stats)

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        nulls = int(values[0])
        fraction = nulls / rows if rows else 0.0
        limit = self.spec.max
        return Verdict(
            fraction <= limit,
            round(fraction, 6),
            limit,
            f"{pct(fraction)} of {self._column} is NULL ({nulls} of {rows} rows); allowed at most {pct(limit)}",
        )


@register(AcceptedValuesCheck)
class AcceptedValues(RowCheck[AcceptedValuesCheck]):
    def failing_rows(self) -> exp.Expr:
        column = self.target.name(self.spec.column)
        allowed = [self.target.typed(v, column) for v in self.spec.values]
        return exp.and_(
            exp.not_(is_null(column)), exp.not_(exp.In(this=col(column), expressions=allowed))
        )

    def failures(self) -> str:
        return f"value(s) of {self.target.name(self.spec.column)} outside {self.spec.values}"

    def threshold(self) -> Any:
        return self.spec.values


@register(RangeCheck)
class Range(RowCheck[RangeCheck]):
    def failing_rows(self) -> exp.Expr:
        column = self.target.name(self.spec.column)
        parts: list[exp.Expr] = []
        if self.spec.min is not None:
            parts.append(
                exp.LT(this=col(column), expression=self.target.typed(self.spec.min, column))
            )
        if self.spec.max is not None:
            parts.append(
                exp.GT(this=col(column), expression=self.target.typed(self.spec.max, column))
            )
        return exp.or_(*parts)

    def failures(self) -> str:
        return f"value(s) of {self.target.name(self.spec.column)} outside {self.threshold()}"

    def threshold(self) -> Any:
        return bounds(self.spec.min, self.spec.max)

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        """[0] when the footers' exact min/max prove every value is in range; otherwise scan."""
        found = stats.column(self.target.name(self.spec.column))
        if found is None or not found.exact_range:
            return None
        if found.min is None:  # no non-NULL values: nothing out of range
            return [0]
        low, high = self.spec.min, self.spec.max
        try:
            inside = (low is None or found.min >= _as_bound(low, found.min)) and (
                high is None or found.max <= _as_bound(high, found.max)
            )
        except (TypeError, ValueError):
            return None
        return [0] if inside else None


def _as_bound(value: Any, like: Any) -> Any:
    """A bound from YAML as the Python type of the footer's value it is compared with."""
    if isinstance(value, str) and isinstance(like, datetime):
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=like.tzinfo) if like.tzinfo else parsed
    if isinstance(value, str) and isinstance(like, date):
        return date.fromisoformat(value)
    return value


@register(PatternCheck)
class Pattern(RowCheck[PatternCheck]):
    def failing_rows(self) -> exp.Expr:
        column = self.target.name(self.spec.column)
        text = exp.cast(col(column), exp.DataType.build("VARCHAR"))
        return exp.and_(
            exp.not_(is_null(column)), exp.not_(self.sql.full_match(text, self.spec.pattern))
        )

    def failures(self) -> str:
        return (
            f"value(s) of {self.target.name(self.spec.column)} not matching {self.spec.pattern!r}"
        )

    def threshold(self) -> Any:
        return self.spec.pattern


@register(FreshnessCheck)
class Freshness(Declared[FreshnessCheck]):
    """The newest value of a date or timestamp column, against the clock the caller passes."""

    @property
    def _column(self) -> str:
        return self.target.name(self.spec.column)

    def aggregates(self) -> list[exp.Expr]:
        newest = exp.cast(exp.Max(this=col(self._column)), exp.DataType.build("TIMESTAMP"))
        return [self.sql.epoch_us(newest)]

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        found = stats.column(self._column)
        if found is None or not found.exact_range:
            return None
        newest = found.max
        if newest is None:
            return [None]
        if not isinstance(newest, datetime):
            if not isinstance(newest, date):
                return None
            newest = datetime(newest.year, newest.month, newest.day)
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return [(newest - EPOCH) // timedelta(microseconds=1)]

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        allowed = format_duration(self.spec.max_age)
        if values[0] is None:
            return Verdict(
                False, None, allowed, f"{self._column} has no values to measure freshness"
            )
        newest = EPOCH + timedelta(microseconds=int(values[0]))
        age = now - newest
        return Verdict(
            age <= self.spec.max_age,
            newest.isoformat(),
            allowed,
            f"newest {self._column} is {newest:%Y-%m-%d %H:%M} UTC, {_age(age)} old; allowed {allowed}",
        )


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def contract_checks(product: Product, target: Target) -> list[Check]:
    """The schema's own checks: not null (and primary key columns), unique, the primary key."""
    schema = product.spec.schema_
    out: list[Check] = []
    pk = schema.primary_key
    for column in schema.columns:
        if not column.nullable or column.primary_key:
            out.append(NotNull(column.name, target))
        if column.unique and not (column.primary_key and len(pk) == 1):
            name = f"contract:unique:{column.name}"
            out.append(Unique(UniqueCheck(type="unique", columns=[column.name], name=name), target))
    if pk:
        name = f"contract:primary_key:{','.join(pk)}"
        out.append(Unique(UniqueCheck(type="unique", columns=pk, name=name), target))
    return out
