"""The gate's run: every check of a product judged at the cost of at most one scan.

The contract's checks come first, then the declared ones, each compiled for the session's
dialect. The staged files' footer statistics answer what they prove exactly; the aggregates of
everything else (identical ones once) go into a single SELECT over the staged rows. Only
failures cost more: a query confirming an approximate failure, and one for sample rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from meshkit.builder import footers
from meshkit.builder.quality.base import Check, Target, declared, staged
from meshkit.builder.quality.builtin import contract_checks
from meshkit.builder.quality.dialects import Dialect, dialect_of
from meshkit.builder.quality.samples import samples
from meshkit.engines.base import Session
from meshkit.specs.mesh import Product
from meshkit.specs.models import Severity


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


def compile_checks(product: Product, dialect: Dialect) -> list[Check]:
    """The contract's own checks (not null, unique, primary key) first, then the declared ones."""
    target = Target.of(product, dialect)
    return [*contract_checks(product, target), *(declared(c, target) for c in product.spec.quality)]


def run_checks(
    product: Product, session: Session, *, files: Sequence[str] | None = None, now: datetime
) -> tuple[int, list[CheckResult]]:
    """Judge every check over the staged data (the `__staged` view) at the time `now`;
    returns (rows, results).

    With `files` (the staged Parquet files), footer statistics answer what they can first.
    """
    dialect = dialect_of(session)
    checks = compile_checks(product, dialect)
    stats = footers.read(files) if files is not None else None
    known: dict[int, list[Any]] = {}
    if stats is not None:
        for i, check in enumerate(checks):
            values = check.from_stats(stats)
            if values is not None:
                known[i] = values
    aggregates: list[exp.Expr] = []
    positions: dict[str, int] = {}  # identical aggregates (a PK also declared unique) run once
    slots: dict[int, list[int]] = {}
    confirm: dict[int, list[exp.Expr]] = {}

    def slot(aggregate: exp.Expr) -> int:
        text = dialect.text(aggregate)
        if text not in positions:
            positions[text] = len(aggregates)
            aggregates.append(aggregate)
        return positions[text]

    if stats is None:
        slot(exp.Count(this=exp.Star()))
    for i, check in enumerate(checks):
        if i in known:
            continue
        specialized = check.specialize(stats) if stats is not None else None
        exact = check.confirm() if specialized is None else None  # specialized: exact already
        if exact is not None:
            confirm[i] = exact
        slots[i] = [slot(a) for a in (specialized or check.aggregates())]
    scanned: list[Any] = []
    if aggregates:
        scan = exp.select(*(a.as_(f"_c{n}") for n, a in enumerate(aggregates))).from_(staged())
        scanned = list(session.fetch(scan).to_pylist()[0].values())
    rows = stats.rows if stats is not None else int(scanned[0])
    results: list[CheckResult] = []
    for i, check in enumerate(checks):
        values = known[i] if i in known else [scanned[n] for n in slots[i]]
        verdict = check.judge(values, rows, now)
        if not verdict.passed and i in confirm:
            exact_scan = exp.select(*confirm[i]).from_(staged())
            verdict = check.judge(
                list(session.fetch(exact_scan).to_pylist()[0].values()), rows, now
            )
        result = CheckResult(check.name, check.type, check.column, check.severity, *verdict)
        if not result.passed:
            result.samples = samples(product, session, check)
        results.append(result)
    return rows, results
