"""What a check is to the quality gate, and the registry of check types.

A `Check` is one check compiled for one product. It says which aggregates measure it (they
join the one scan over the staged rows), what the staged files' footer statistics already
prove (`from_stats`, no scan at all), how the measured values are judged (`judge`, with the
caller's clock) and which rows to show when it fails (`sample_query`). A check type declared
under `quality:` is a `Declared` subclass registered with `@register(Model)`, where `Model` is
its spec model (`meshkit.specs.checks.CheckSpec`): registering makes `quality:` accept the type
and the build measure it. `RowCheck` is the short form for checks that fail on matching rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from sqlglot import exp

from meshkit.builder.footers import FooterStats
from meshkit.builder.quality.dialects import Dialect
from meshkit.errors import BuildError, MeshkitError
from meshkit.specs.checks import CheckSpec, register_check, type_of, unregister_check
from meshkit.specs.mesh import Product
from meshkit.specs.models import Severity

STAGED = "__staged"  # the staged rows, as the gate reads them
THIS = "this"  # the staged rows, as custom SQL checks name them


class Verdict(NamedTuple):
    passed: bool
    measured: Any
    threshold: Any
    message: str


@dataclass(frozen=True)
class Target:
    """What checks are compiled against: the product's declared columns and the SQL dialect."""

    columns: dict[str, tuple[str, str]]  # lower-case name -> (declared name, SQL type)
    dialect: Dialect

    @classmethod
    def of(cls, product: Product, dialect: Dialect) -> Target:
        columns = {c.name.lower(): (c.name, c.type) for c in product.spec.schema_.columns}
        return cls(columns, dialect)

    def name(self, column: str) -> str:
        """A column as the schema spells it (checks may write it in another case)."""
        return self.columns.get(column.lower(), (column, ""))[0]

    def typed(self, value: Any, column: str) -> exp.Expr:
        """A bound from YAML, cast to the column's type (so '1995-01-01' compares as a DATE)."""
        if isinstance(value, str):
            sql_type = self.columns.get(column.lower(), (column, "VARCHAR"))[1]
            return exp.cast(exp.Literal.string(value), self.dialect.type(sql_type))
        return exp.convert(value)


class Check(ABC):
    """One check compiled for one product: how it is measured, judged and sampled."""

    type: ClassVar[str]  # what results report as the check's type

    def __init__(
        self, *, name: str, column: str | None, severity: Severity, target: Target
    ) -> None:
        self.name = name
        self.column = column
        self.severity = severity
        self.target = target

    @property
    def sql(self) -> Dialect:
        return self.target.dialect

    @abstractmethod
    def aggregates(self) -> list[exp.Expr]:
        """Aggregates over the staged rows whose values `judge` gets (all in the one scan)."""

    @abstractmethod
    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        """Judge the measured `values` of a product of `rows` rows at the time `now`."""

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        """The aggregates' values when the footer statistics prove them; None: scan."""
        return None

    def specialize(self, stats: FooterStats) -> list[exp.Expr] | None:
        """Cheaper exact aggregates that the footer statistics make possible; None: as is."""
        return None

    def confirm(self) -> list[exp.Expr] | None:
        """Exact aggregates that confirm a failure of approximate ones before it is reported."""
        return None

    def failing_rows(self) -> exp.Expr | None:
        """A predicate selecting the rows that fail the check (for samples), if there is one."""
        return None

    def sample_query(self, shown: Sequence[str]) -> exp.Select | None:
        """Failing rows' `shown` columns (never PII; the gate adds the LIMIT); None: no rows."""
        predicate = self.failing_rows()
        if predicate is None:
            return None
        return exp.select(*map(col, shown)).from_(staged()).where(predicate)


S = TypeVar("S", bound=CheckSpec)


class Declared(Check, Generic[S]):
    """A check declared under `quality:`, built from its spec model."""

    model: ClassVar[type[CheckSpec]]

    def __init__(self, spec: S, target: Target) -> None:
        column = getattr(spec, "column", None)
        super().__init__(
            name=spec.label(),
            column=target.name(column) if isinstance(column, str) else None,
            severity=spec.severity,
            target=target,
        )
        self.spec = spec


class RowCheck(Declared[S]):
    """A check each row passes or fails: it passes when no row fails. The failing rows are
    counted in the one scan and are the samples."""

    @abstractmethod
    def failing_rows(self) -> exp.Expr:
        """The predicate of the rows that fail."""

    @abstractmethod
    def failures(self) -> str:
        """What a failing row is, in the report ("value(s) of status outside [F, O]")."""

    def threshold(self) -> Any:
        """What the report shows as the check's threshold."""
        return 0

    def aggregates(self) -> list[exp.Expr]:
        return [count_where(self.failing_rows())]

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        bad = int(values[0])
        what = self.failures()
        return Verdict(
            bad == 0, bad, self.threshold(), f"no {what}" if bad == 0 else f"{bad} {what}"
        )


CHECKS: dict[str, type[Declared[Any]]] = {}
D = TypeVar("D", bound=type[Declared[Any]])


def register(model: type[CheckSpec]) -> Callable[[D], D]:
    """Class decorator: the class measures the check type `model` declares.

    `model` (a `CheckSpec` subclass with `type: Literal["<name>"]`) is registered with the spec
    side too, so `quality:` lists accept the type. Register at import time.
    """

    def add(cls: D) -> D:
        tag = type_of(model)
        existing = CHECKS.get(tag)
        if existing is not None and existing is not cls:
            raise MeshkitError(
                f"check type '{tag}' is registered twice: by {existing.__module__}."
                f"{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}",
                hint="give one of the check types another name",
            )
        register_check(model)
        cls.type, cls.model = tag, model
        CHECKS[tag] = cls
        return cls

    return add


def unregister(tag: str) -> None:
    """Forget a check type registered from outside meshkit (tests, plugin reloads)."""
    CHECKS.pop(tag, None)
    unregister_check(tag)


def declared(spec: CheckSpec, target: Target) -> Check:
    """The check a `quality:` entry declares."""
    tag = type_of(type(spec))
    implementation = CHECKS.get(tag)
    if implementation is None:
        raise BuildError(
            f"check type '{tag}' is declared but nothing measures it",
            hint="register a class for it with @meshkit.builder.quality.register(...)",
        )
    return implementation(spec, target)


# ---------------------------------------------------------------------------- SQL helpers


def col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def staged() -> exp.Table:
    return exp.table_(STAGED, quoted=True)


def is_null(name: str) -> exp.Expr:
    return exp.Is(this=col(name), expression=exp.null())


def count_where(predicate: exp.Expr) -> exp.Expr:
    return exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=predicate))


def distinct_where(value: exp.Expr, predicate: exp.Expr) -> exp.Expr:
    return exp.Filter(
        this=exp.Count(this=exp.Distinct(expressions=[value])), expression=exp.Where(this=predicate)
    )


def pct(value: float) -> str:
    return f"{value * 100:.3g}%"


def bounds(low: Any, high: Any) -> str:
    """`[low, high]`, `-` for a missing bound."""
    return f"[{low if low is not None else '-'}, {high if high is not None else '-'}]"
