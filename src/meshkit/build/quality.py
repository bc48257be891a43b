"""The audit in write-audit-publish: contract and quality checks, compiled into one scan.

Every built-in check becomes one aggregate expression (mostly `count(*) FILTER (WHERE ...)`), and
all of them go into a single SELECT over the staged files, so the data is read once however many
checks a product has. Custom `sql` checks are separate queries by nature. Only failing checks cost
more: a LIMIT query for a few sample rows, never showing PII or restricted columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from meshkit.engines.base import Session
from meshkit.spec.mesh import Product
from meshkit.spec.models import (
    AcceptedValuesCheck,
    Classification,
    FreshnessCheck,
    NullFractionCheck,
    PatternCheck,
    RangeCheck,
    RowCountCheck,
    Severity,
    SqlCheck,
    UniqueCheck,
    format_duration,
)

STAGED = "__staged"
THIS = "this"
SAMPLE_ROWS = 5


@dataclass
class CheckResult:
    name: str
    type: str
    column: str | None
    severity: Severity
    passed: bool
    measured: Any
    threshold: Any
    message: str
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return not self.passed and self.severity == Severity.ERROR


@dataclass
class _Compiled:
    """One check, as aggregates in the shared scan plus how to judge what they measure."""

    name: str
    type: str
    column: str | None
    severity: Severity
    aggregates: list[exp.Expr]
    judge: Callable[[list[Any], int], tuple[bool, Any, Any, str]]
    failing_rows: exp.Expr | None = None  # WHERE predicate selecting failing rows
    duplicates_of: list[str] | None = None  # unique checks sample duplicated keys instead


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _count_where(predicate: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=predicate))


def _typed(value: Any, sql_type: str) -> exp.Expr:
    """A bound from YAML, cast to the column's type (so '1995-01-01' compares as a DATE)."""
    if isinstance(value, str):
        return exp.cast(exp.Literal.string(value), exp.DataType.build(sql_type, dialect="duckdb"))
    return exp.convert(value)


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def compile_checks(product: Product) -> list[_Compiled]:
    """The contract's own checks (not null, unique, primary key) first, then the declared ones."""
    spec = product.spec
    types = {c.name.lower(): c.type for c in spec.schema_.columns}
    canonical = {c.name.lower(): c.name for c in spec.schema_.columns}
    out: list[_Compiled] = []
    pk = spec.schema_.primary_key
    for column in spec.schema_.columns:
        if not column.nullable or column.primary_key:
            out.append(_not_null(column.name))
        if column.unique and not (column.primary_key and len(pk) == 1):
            out.append(_unique([column.name], name=f"contract:unique:{column.name}"))
    if pk:
        out.append(_unique(pk, name=f"contract:primary_key:{','.join(pk)}"))
    for check in spec.quality:
        named = getattr(check, "column", None)
        target = canonical.get(named.lower(), named) if isinstance(named, str) else None
        compiled = _compile(check, target, types.get((target or "").lower(), "VARCHAR"), canonical)
        if compiled is not None:
            out.append(compiled)
    return out


def _not_null(column: str) -> _Compiled:
    def judge(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
        nulls = int(values[0])
        ok = nulls == 0
        return (
            ok,
            nulls,
            0,
            (
                f"{column} has no NULLs"
                if ok
                else f"{column} is declared not nullable but has {nulls} NULL(s)"
            ),
        )

    return _Compiled(
        name=f"contract:not_null:{column}",
        type="not_null",
        column=column,
        severity=Severity.ERROR,
        aggregates=[_count_where(exp.Is(this=_col(column), expression=exp.null()))],
        judge=judge,
        failing_rows=exp.Is(this=_col(column), expression=exp.null()),
    )


def _unique(columns: Sequence[str], *, name: str, severity: Severity = Severity.ERROR) -> _Compiled:
    key: exp.Expr = (
        _col(columns[0]) if len(columns) == 1 else exp.Tuple(expressions=[_col(c) for c in columns])
    )
    all_present = exp.and_(
        *(exp.not_(exp.Is(this=_col(c), expression=exp.null())) for c in columns)
    )
    label = ", ".join(columns)

    def judge(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
        present, distinct = int(values[0]), int(values[1])
        duplicates = present - distinct
        ok = duplicates == 0
        return (
            ok,
            duplicates,
            0,
            (f"({label}) is unique" if ok else f"({label}) has {duplicates} duplicate row(s)"),
        )

    return _Compiled(
        name=name,
        type="unique",
        column=label,
        severity=severity,
        aggregates=[
            _count_where(all_present),
            exp.Count(this=exp.Distinct(expressions=[key])),
        ],
        judge=judge,
        duplicates_of=list(columns),
    )


def _compile(
    check: Any, column: str | None, sql_type: str, canonical: dict[str, str]
) -> _Compiled | None:
    name = check.label()
    severity = check.severity
    if isinstance(check, RowCountCheck):
        low, high = check.min, check.max

        def judge_rows(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
            ok = (low is None or rows >= low) and (high is None or rows <= high)
            bounds = f"[{low if low is not None else '-'}, {high if high is not None else '-'}]"
            return ok, rows, bounds, f"{rows} rows; expected {bounds}"

        return _Compiled(name, "row_count", None, severity, [], judge_rows)
    if isinstance(check, UniqueCheck):
        columns = [canonical.get(c.lower(), c) for c in check.columns]
        return _unique(columns, name=name, severity=severity)
    if isinstance(check, SqlCheck):
        return None  # run separately: see run_custom_checks
    assert column is not None
    col = _col(column)
    if isinstance(check, NullFractionCheck):
        limit = check.max

        def judge_nulls(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
            nulls = int(values[0])
            fraction = nulls / rows if rows else 0.0
            ok = fraction <= limit
            return (
                ok,
                round(fraction, 6),
                limit,
                (
                    f"{_pct(fraction)} of {column} is NULL ({nulls} of {rows} rows); allowed at most {_pct(limit)}"
                ),
            )

        predicate: exp.Expr = exp.Is(this=col, expression=exp.null())
        return _Compiled(
            name,
            "null_fraction",
            column,
            severity,
            [_count_where(predicate)],
            judge_nulls,
            predicate,
        )
    if isinstance(check, AcceptedValuesCheck):
        allowed = check.values
        predicate = exp.and_(
            exp.not_(exp.Is(this=col, expression=exp.null())),
            exp.not_(exp.In(this=col, expressions=[_typed(v, sql_type) for v in allowed])),
        )
        return _Compiled(
            name,
            "accepted_values",
            column,
            severity,
            [_count_where(predicate)],
            _counting(f"value(s) of {column} outside {allowed}", allowed),
            predicate,
        )
    if isinstance(check, RangeCheck):
        parts: list[exp.Expr] = []
        if check.min is not None:
            parts.append(exp.LT(this=col, expression=_typed(check.min, sql_type)))
        if check.max is not None:
            parts.append(exp.GT(this=col, expression=_typed(check.max, sql_type)))
        predicate = exp.or_(*parts)
        bounds = f"[{check.min if check.min is not None else '-'}, {check.max if check.max is not None else '-'}]"
        return _Compiled(
            name,
            "range",
            column,
            severity,
            [_count_where(predicate)],
            _counting(f"value(s) of {column} outside {bounds}", bounds),
            predicate,
        )
    if isinstance(check, PatternCheck):
        text = exp.cast(col, exp.DataType.build("VARCHAR"))
        predicate = exp.and_(
            exp.not_(exp.Is(this=col, expression=exp.null())),
            exp.not_(
                exp.Anonymous(
                    this="regexp_full_match", expressions=[text, exp.Literal.string(check.pattern)]
                )
            ),
        )
        return _Compiled(
            name,
            "pattern",
            column,
            severity,
            [_count_where(predicate)],
            _counting(f"value(s) of {column} not matching {check.pattern!r}", check.pattern),
            predicate,
        )
    if isinstance(check, FreshnessCheck):
        max_age = check.max_age
        newest = exp.Anonymous(
            this="epoch_us",
            expressions=[exp.cast(exp.Max(this=col), exp.DataType.build("TIMESTAMP"))],
        )
        return _Compiled(name, "freshness", column, severity, [newest], _fresh(column, max_age))
    raise AssertionError(f"unhandled check {check!r}")


def _counting(what: str, threshold: Any) -> Callable[[list[Any], int], tuple[bool, Any, Any, str]]:
    def judge(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
        bad = int(values[0])
        return bad == 0, bad, threshold, (f"no {what}" if bad == 0 else f"{bad} {what}")

    return judge


def _fresh(
    column: str, max_age: timedelta
) -> Callable[[list[Any], int], tuple[bool, Any, Any, str]]:
    def judge(values: list[Any], rows: int) -> tuple[bool, Any, Any, str]:
        if values[0] is None:
            return (
                False,
                None,
                format_duration(max_age),
                f"{column} has no values to measure freshness",
            )
        newest = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(values[0]))
        age = now() - newest
        ok = age <= max_age
        return (
            ok,
            newest.isoformat(),
            format_duration(max_age),
            (
                f"newest {column} is {newest:%Y-%m-%d %H:%M} UTC, {_age(age)} old; allowed {format_duration(max_age)}"
            ),
        )

    return judge


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def now() -> datetime:
    """The clock checks use (tests freeze it)."""
    return datetime.now(UTC)


def safe_columns(product: Product) -> list[str]:
    """Columns whose values may appear in reports: not PII, not restricted."""
    return [
        c.name
        for c in product.spec.schema_.columns
        if not c.pii and product.classification_of(c) != Classification.RESTRICTED
    ]


def run_checks(product: Product, session: Session) -> tuple[int, list[CheckResult]]:
    """Scan the staged data once for every built-in check; returns (row count, results)."""
    compiled = compile_checks(product)
    aggregates: list[exp.Expr] = [exp.Count(this=exp.Star()).as_("_rows")]
    slots: list[tuple[int, int]] = []
    for item in compiled:
        start = len(aggregates)
        aggregates += [a.as_(f"_c{start + i}") for i, a in enumerate(item.aggregates)]
        slots.append((start, len(item.aggregates)))
    scan = exp.select(*aggregates).from_(exp.table_(STAGED, quoted=True))
    row = session.fetch(scan).to_pylist()[0]
    values = list(row.values())
    rows = int(values[0])
    results: list[CheckResult] = []
    for item, (start, width) in zip(compiled, slots, strict=True):
        passed, measured, threshold, message = item.judge(values[start : start + width], rows)
        result = CheckResult(
            item.name, item.type, item.column, item.severity, passed, measured, threshold, message
        )
        if not passed:
            result.samples = _samples(product, session, item)
        results.append(result)
    results.extend(run_custom_checks(product, session))
    return rows, results


def _samples(product: Product, session: Session, item: _Compiled) -> list[dict[str, Any]]:
    columns = safe_columns(product)
    if not columns:
        return []
    staged = exp.table_(STAGED, quoted=True)
    query: exp.Select
    if item.duplicates_of:
        keys = [_col(c) for c in item.duplicates_of]
        duplicated = (
            exp.select(*keys)
            .from_(staged.copy())
            .group_by(*keys)
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.convert(1)))
        )
        key = keys[0] if len(keys) == 1 else exp.Tuple(expressions=keys)
        query = (
            exp.select(*map(_col, columns))
            .from_(staged)
            .where(exp.In(this=key.copy(), query=exp.Subquery(this=duplicated)))
        )
    elif item.failing_rows is not None:
        query = exp.select(*map(_col, columns)).from_(staged).where(item.failing_rows.copy())
    else:
        return []
    return _jsonable(session.fetch(query.limit(SAMPLE_ROWS)).to_pylist())


def run_custom_checks(product: Product, session: Session) -> list[CheckResult]:
    results = []
    safe = {c.lower() for c in safe_columns(product)}
    for check in product.spec.quality:
        if not isinstance(check, SqlCheck):
            continue
        failing = sqlglot.parse_one(check.query, dialect="duckdb")
        assert isinstance(failing, exp.Query)
        counted = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(
            exp.paren(failing.copy()).as_("_f")
        )
        bad = int(session.fetch(counted).to_pylist()[0]["n"])
        ok = bad <= check.max_failures
        samples: list[dict[str, Any]] = []
        if not ok:
            rows = session.fetch(
                exp.select(exp.Star()).from_(exp.paren(failing).as_("_f")).limit(SAMPLE_ROWS)
            )
            samples = _jsonable(
                [{k: v for k, v in r.items() if k.lower() in safe} for r in rows.to_pylist()]
            )
        results.append(
            CheckResult(
                check.label(),
                "sql",
                None,
                check.severity,
                ok,
                bad,
                check.max_failures,
                f"{bad} failing row(s); allowed {check.max_failures}",
                samples,
            )
        )
    return results


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return str(value)

    return [{k: convert(v) for k, v in row.items()} for row in rows]
