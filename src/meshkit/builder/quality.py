"""The audit in write-audit-publish: contract and quality checks, at the cost of one scan.

Each check compiles to the aggregates that measure it (mostly `count(*) FILTER (WHERE ...)`).
Before scanning, the staged files' footer statistics answer what they can prove exactly (row
count, NULL counts, freshness, range bounds that hold); everything else goes into a single
SELECT over the staged files, so the data is read at most once however many checks a product
has. Custom `sql` checks that are a plain filter over `this` join that scan; other custom
checks run as their own query. Only failures cost more: a LIMIT query for a few sample rows,
never showing PII or restricted columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlglot
from sqlglot import exp

from meshkit.builder import footers
from meshkit.builder.footers import FooterStats
from meshkit.engines.base import Session
from meshkit.specs.checks import (
    AcceptedValuesCheck,
    FreshnessCheck,
    NullFractionCheck,
    PatternCheck,
    RangeCheck,
    RowCountCheck,
    SqlCheck,
    UniqueCheck,
)
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification, Severity, format_duration

STAGED = "__staged"
THIS = "this"
SAMPLE_ROWS = 5

Verdict = tuple[bool, Any, Any, str]  # passed, measured, threshold, message
Judge = Callable[[list[Any], int], Verdict]
FromStats = Callable[[FooterStats], list[Any] | None]


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
class Compiled:
    """One check: the aggregates that measure it, and how to judge what they measure."""

    name: str
    type: str
    column: str | None
    severity: Severity
    aggregates: list[exp.Expr]
    judge: Judge
    failing_rows: exp.Expr | None = None  # WHERE predicate selecting failing rows
    duplicates_of: list[str] | None = None  # unique checks sample duplicated keys instead
    from_stats: FromStats | None = None  # the aggregates' values, when footers prove them
    specialize: Callable[[FooterStats], list[exp.Expr] | None] | None = None  # cheaper aggregates
    exact: list[exp.Expr] | None = None  # exact aggregates to confirm a fast-path failure
    sample_query: exp.Query | None = None  # custom checks sample their own query


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _is_null(name: str) -> exp.Expr:
    return exp.Is(this=_col(name), expression=exp.null())


def _count_where(predicate: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=predicate))


def _distinct_where(value: exp.Expr, predicate: exp.Expr) -> exp.Expr:
    return exp.Filter(
        this=exp.Count(this=exp.Distinct(expressions=[value])), expression=exp.Where(this=predicate)
    )


def _typed(value: Any, sql_type: str) -> exp.Expr:
    """A bound from YAML, cast to the column's type (so '1995-01-01' compares as a DATE)."""
    if isinstance(value, str):
        return exp.cast(exp.Literal.string(value), exp.DataType.build(sql_type, dialect="duckdb"))
    return exp.convert(value)


def _pct(value: float) -> str:
    return f"{value * 100:.3g}%"


# ------------------------------------------------------------------------------ compile


def compile_checks(product: Product) -> list[Compiled]:
    """The contract's own checks (not null, unique, primary key) first, then the declared ones."""
    spec = product.spec
    types = {c.name.lower(): c.type for c in spec.schema_.columns}
    canonical = {c.name.lower(): c.name for c in spec.schema_.columns}
    out: list[Compiled] = []
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
        out.append(_compile(check, target, types.get((target or "").lower(), "VARCHAR"), canonical))
    return out


def _nulls_from_stats(column: str) -> FromStats:
    def answer(stats: FooterStats) -> list[Any] | None:
        found = stats.column(column)
        return None if found is None or found.null_count is None else [found.null_count]

    return answer


def _not_null(column: str) -> Compiled:
    def judge(values: list[Any], rows: int) -> Verdict:
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

    return Compiled(
        name=f"contract:not_null:{column}",
        type="not_null",
        column=column,
        severity=Severity.ERROR,
        aggregates=[_count_where(_is_null(column))],
        judge=judge,
        failing_rows=_is_null(column),
        from_stats=_nulls_from_stats(column),
    )


def _unique(columns: Sequence[str], *, name: str, severity: Severity = Severity.ERROR) -> Compiled:
    """Duplicates = non-NULL keys - distinct keys. Composite keys are hashed into one value
    (one hash table instead of a struct one); a hash collision can only look like a duplicate,
    so a failure is confirmed with the exact distinct count before it is reported."""
    complete = exp.and_(*(exp.not_(_is_null(c)) for c in columns))
    present = _count_where(complete)
    if len(columns) == 1:
        distinct: exp.Expr = exp.Count(this=exp.Distinct(expressions=[_col(columns[0])]))
        exact = None
    else:
        # keys with a NULL part are not compared (SQL semantics), so they must not be counted
        hashed = exp.Anonymous(this="hash", expressions=[_col(c) for c in columns])
        distinct = _distinct_where(hashed, complete)
        key = exp.Tuple(expressions=[_col(c) for c in columns])
        exact = [present.copy(), _distinct_where(key, complete.copy())]
    label = ", ".join(columns)

    def judge(values: list[Any], rows: int) -> Verdict:
        duplicates = int(values[0]) - int(values[1])
        ok = duplicates == 0
        return (
            ok,
            duplicates,
            0,
            (f"({label}) is unique" if ok else f"({label}) has {duplicates} duplicate row(s)"),
        )

    def bitmap(stats: FooterStats) -> list[exp.Expr] | None:
        packed = _packed_key(columns, stats)
        if packed is None:
            return None
        key, size = packed
        bits = exp.Filter(
            this=exp.Anonymous(
                this="bitstring_agg",
                expressions=[key, exp.convert(0), exp.convert(size - 1)],
            ),
            expression=exp.Where(this=complete.copy()),
        )
        count = exp.Coalesce(
            this=exp.Anonymous(this="bit_count", expressions=[bits]), expressions=[exp.convert(0)]
        )
        return [present.copy(), count]

    return Compiled(
        name=name,
        type="unique",
        column=label,
        severity=severity,
        aggregates=[present, distinct],
        judge=judge,
        duplicates_of=list(columns),
        exact=exact,
        specialize=bitmap,
    )


MAX_BITMAP_BITS = 1 << 30  # 128 MiB of bitmap at most
BITMAP_DENSITY = 64  # and at most 64 bits per row: sparse keys are cheaper to hash


def _packed_key(columns: Sequence[str], stats: FooterStats) -> tuple[exp.Expr, int] | None:
    """Integer keys with exact bounds pack into one integer in [0, size): distinct keys are then
    set bits of a bitmap (`bitstring_agg`), exact and several times cheaper than hashing."""
    bounds: list[tuple[int, int]] = []
    for column in columns:
        found = stats.column(column)
        if found is None or not found.exact_range or found.min is None:
            return None
        low, high = found.min, found.max
        if isinstance(low, bool) or not (isinstance(low, int) and isinstance(high, int)):
            return None
        bounds.append((low, high))
    size = 1
    for low, high in bounds:
        size *= high - low + 1
    if size > MAX_BITMAP_BITS or size > max(BITMAP_DENSITY * stats.rows, 1 << 20):
        return None
    key: exp.Expr | None = None
    stride = 1
    for column, (low, high) in reversed(list(zip(columns, bounds, strict=True))):
        offset = exp.paren(  # sqlglot does not add precedence parentheses itself
            exp.Sub(
                this=exp.cast(_col(column), exp.DataType.build("BIGINT")),
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


def _compile(check: Any, column: str | None, sql_type: str, canonical: dict[str, str]) -> Compiled:
    name = check.label()
    severity = check.severity
    if isinstance(check, RowCountCheck):
        low, high = check.min, check.max

        def judge_rows(values: list[Any], rows: int) -> Verdict:
            ok = (low is None or rows >= low) and (high is None or rows <= high)
            bounds = f"[{low if low is not None else '-'}, {high if high is not None else '-'}]"
            return ok, rows, bounds, f"{rows} rows; expected {bounds}"

        return Compiled(name, "row_count", None, severity, [], judge_rows, from_stats=lambda s: [])
    if isinstance(check, UniqueCheck):
        columns = [canonical.get(c.lower(), c) for c in check.columns]
        return _unique(columns, name=name, severity=severity)
    if isinstance(check, SqlCheck):
        return _custom(check)
    assert column is not None
    col = _col(column)
    if isinstance(check, NullFractionCheck):
        limit = check.max

        def judge_nulls(values: list[Any], rows: int) -> Verdict:
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

        return Compiled(
            name,
            "null_fraction",
            column,
            severity,
            [_count_where(_is_null(column))],
            judge_nulls,
            _is_null(column),
            from_stats=_nulls_from_stats(column),
        )
    if isinstance(check, AcceptedValuesCheck):
        allowed = check.values
        predicate = exp.and_(
            exp.not_(_is_null(column)),
            exp.not_(exp.In(this=col, expressions=[_typed(v, sql_type) for v in allowed])),
        )
        return Compiled(
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
        return Compiled(
            name,
            "range",
            column,
            severity,
            [_count_where(predicate)],
            _counting(f"value(s) of {column} outside {bounds}", bounds),
            predicate,
            from_stats=_range_from_stats(column, check.min, check.max),
        )
    if isinstance(check, PatternCheck):
        text = exp.cast(col, exp.DataType.build("VARCHAR"))
        predicate = exp.and_(
            exp.not_(_is_null(column)),
            exp.not_(
                exp.Anonymous(
                    this="regexp_full_match", expressions=[text, exp.Literal.string(check.pattern)]
                )
            ),
        )
        return Compiled(
            name,
            "pattern",
            column,
            severity,
            [_count_where(predicate)],
            _counting(f"value(s) of {column} not matching {check.pattern!r}", check.pattern),
            predicate,
        )
    if isinstance(check, FreshnessCheck):
        newest = exp.Anonymous(
            this="epoch_us",
            expressions=[exp.cast(exp.Max(this=col), exp.DataType.build("TIMESTAMP"))],
        )
        return Compiled(
            name,
            "freshness",
            column,
            severity,
            [newest],
            _fresh(column, check.max_age),
            from_stats=_newest_from_stats(column),
        )
    raise AssertionError(f"unhandled check {check!r}")


def _custom(check: SqlCheck) -> Compiled:
    """A custom check. `SELECT ... FROM this WHERE p` (one table, no grouping) becomes
    `count(*) FILTER (WHERE p)` in the shared scan; anything else runs as its own query."""
    query = sqlglot.parse_one(check.query, dialect="duckdb")
    assert isinstance(query, exp.Query)
    limit = check.max_failures

    def judge(values: list[Any], rows: int) -> Verdict:
        bad = int(values[0])
        return bad <= limit, bad, limit, f"{bad} failing row(s); allowed {limit}"

    predicate = _plain_filter(query)
    if predicate is not None:  # samples come from the staged rows, like any other check
        return Compiled(
            check.label(), "sql", None, check.severity, [_count_where(predicate)], judge, predicate
        )
    aggregate = exp.Subquery(
        this=exp.select(exp.Count(this=exp.Star())).from_(exp.paren(query.copy()).as_("_f"))
    )
    return Compiled(
        check.label(), "sql", None, check.severity, [aggregate], judge, sample_query=query
    )


def _plain_filter(query: exp.Query) -> exp.Expr | None:
    if not isinstance(query, exp.Select) or query.args.get("with_"):
        return None
    source = query.args.get("from_")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or table.name.lower() != THIS or table.db:
        return None
    blockers = (
        "joins",
        "group",
        "having",
        "distinct",
        "limit",
        "offset",
        "order",
        "qualify",
        "laterals",
    )
    if any(query.args.get(k) for k in blockers):
        return None
    if any(isinstance(e, exp.AggFunc | exp.Window) for e in query.expressions for e in e.walk()):
        return None
    where = query.args.get("where")
    if where is None:
        return exp.true()
    predicate: exp.Expr = where.this.copy()
    if any(isinstance(node, exp.Subquery | exp.Select) for node in predicate.walk()):
        return None
    for column in predicate.find_all(exp.Column):
        column.set("table", None)
    return predicate


def _counting(what: str, threshold: Any) -> Judge:
    def judge(values: list[Any], rows: int) -> Verdict:
        bad = int(values[0])
        return bad == 0, bad, threshold, (f"no {what}" if bad == 0 else f"{bad} {what}")

    return judge


def _as_bound(value: Any, like: Any) -> Any:
    if isinstance(value, str) and isinstance(like, datetime):
        return (
            datetime.fromisoformat(value).replace(tzinfo=like.tzinfo)
            if like.tzinfo
            else datetime.fromisoformat(value)
        )
    if isinstance(value, str) and isinstance(like, date):
        return date.fromisoformat(value)
    return value


def _range_from_stats(column: str, low: Any, high: Any) -> FromStats:
    """[0] when the footers' exact min/max prove every value is in range; otherwise scan."""

    def answer(stats: FooterStats) -> list[Any] | None:
        found = stats.column(column)
        if found is None or not found.exact_range:
            return None
        if found.min is None:  # no non-NULL values: nothing out of range
            return [0]
        try:
            inside = (low is None or found.min >= _as_bound(low, found.min)) and (
                high is None or found.max <= _as_bound(high, found.max)
            )
        except (TypeError, ValueError):
            return None
        return [0] if inside else None

    return answer


def _newest_from_stats(column: str) -> FromStats:
    def answer(stats: FooterStats) -> list[Any] | None:
        found = stats.column(column)
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
        return [(newest - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)]

    return answer


def _fresh(column: str, max_age: timedelta) -> Judge:
    def judge(values: list[Any], rows: int) -> Verdict:
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


# ---------------------------------------------------------------------------------- run


def safe_columns(product: Product) -> list[str]:
    """Columns whose values may appear in reports: not PII, not restricted."""
    return [
        c.name
        for c in product.spec.schema_.columns
        if not c.pii and product.classification_of(c) != Classification.RESTRICTED
    ]


def run_checks(
    product: Product, session: Session, *, files: Sequence[str] | None = None
) -> tuple[int, list[CheckResult]]:
    """Judge every check over the staged data (the `__staged` view); returns (rows, results).

    With `files` (the staged Parquet files), footer statistics answer what they can first.
    """
    compiled = compile_checks(product)
    stats = footers.read(files) if files is not None else None
    known: dict[int, list[Any]] = {}
    if stats is not None:
        for i, item in enumerate(compiled):
            values = item.from_stats(stats) if item.from_stats is not None else None
            if values is not None:
                known[i] = values
    aggregates: list[exp.Expr] = []
    positions: dict[str, int] = {}  # identical aggregates (a PK also declared unique) run once
    slots: dict[int, list[int]] = {}

    def slot(aggregate: exp.Expr) -> int:
        text = aggregate.sql(dialect="duckdb")
        if text not in positions:
            positions[text] = len(aggregates)
            aggregates.append(aggregate)
        return positions[text]

    if stats is None:
        slot(exp.Count(this=exp.Star()))
    for i, item in enumerate(compiled):
        if i in known:
            continue
        chosen = (
            item.specialize(stats) if item.specialize is not None and stats is not None else None
        )
        if chosen is not None:
            item.exact = None  # the specialized form is exact already
        slots[i] = [slot(a) for a in (chosen or item.aggregates)]
    scanned: list[Any] = []
    if aggregates:
        scan = exp.select(*(a.as_(f"_c{n}") for n, a in enumerate(aggregates))).from_(
            exp.table_(STAGED, quoted=True)
        )
        scanned = list(session.fetch(scan).to_pylist()[0].values())
    rows = stats.rows if stats is not None else int(scanned[0])
    results: list[CheckResult] = []
    for i, item in enumerate(compiled):
        values = known[i] if i in known else [scanned[n] for n in slots[i]]
        passed, measured, threshold, message = item.judge(values, rows)
        if not passed and item.exact is not None:
            exact = exp.select(*(a.copy() for a in item.exact)).from_(
                exp.table_(STAGED, quoted=True)
            )
            values = list(session.fetch(exact).to_pylist()[0].values())
            passed, measured, threshold, message = item.judge(values, rows)
        result = CheckResult(
            item.name, item.type, item.column, item.severity, passed, measured, threshold, message
        )
        if not passed:
            result.samples = _samples(product, session, item)
        results.append(result)
    return rows, results


def _samples(product: Product, session: Session, item: Compiled) -> list[dict[str, Any]]:
    columns = safe_columns(product)
    staged = exp.table_(STAGED, quoted=True)
    query: exp.Select
    if item.sample_query is not None:
        shown = _passthrough_columns(item.sample_query, columns)
        if not shown:
            return []
        rows = session.fetch(
            exp.select(*map(_col, shown))
            .from_(exp.paren(item.sample_query.copy()).as_("_f"))
            .limit(SAMPLE_ROWS)
        ).to_pylist()
        return _jsonable(rows)
    if not columns:
        return []
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


def _passthrough_columns(query: exp.Query, safe: Sequence[str]) -> list[str]:
    """Output columns of a custom check that are safe columns passed through unchanged.

    A computed or renamed output (`phone AS id`, `upper(name)`) might carry PII, so it is never
    sampled; `*` passes every column through under its own name.
    """
    safe_names = {c.lower(): c for c in safe}
    if not isinstance(query, exp.Select):
        return []
    shown: list[str] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star):
            shown += [c for c in safe if c not in shown]
            continue
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
            name = inner.name.lower()
            if name in safe_names and projection.alias_or_name.lower() == name:
                shown.append(projection.alias_or_name)
    return shown


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return str(value)

    return [{k: convert(v) for k, v in row.items()} for row in rows]
