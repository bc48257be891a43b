"""Frozen records returned by ``Catalog`` reads.

Readers get plain values rather than ORM objects so nothing can lazy-load after the session has
closed, and so the CLI can dump any of them as JSON through ``to_dict()``.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import numbers
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import PurePath
from typing import Any
from uuid import UUID


def jsonable(value: Any) -> Any:
    """Convert ``value`` to something both ``json.dumps`` and PostgreSQL's ``json`` accept.

    Measured values and sample rows come straight from query engines, so they hold dates,
    decimals, numpy scalars and the odd NaN; storing them as-is would fail on one backend or
    the other (PostgreSQL rejects NaN, SQLite's JSON encoder rejects ``Decimal``).
    """
    if isinstance(value, Enum):  # before str: a StrEnum becomes its plain value
        return jsonable(value.value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, Decimal):
        return _finite_or_text(float(value)) if value.is_finite() else str(value)
    if isinstance(value, numbers.Real):
        return _finite_or_text(float(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, UUID | PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    # pyarrow scalars (``.as_py()``) and numpy values (``.item()``, ``.tolist()``) know their
    # Python value.
    for unwrap in ("as_py", "item", "tolist"):
        method = getattr(value, unwrap, None)
        if callable(method):
            try:
                plain = method()
            except (TypeError, ValueError):
                continue
            if plain is not value:
                return jsonable(plain)
    return str(value)


def _finite_or_text(number: float) -> float | str:
    return number if math.isfinite(number) else str(number)


class _Record:
    """Mixin giving every record a JSON-ready ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        if not dataclasses.is_dataclass(self):  # pragma: no cover - every record is one
            raise TypeError(f"{type(self).__name__} is not a dataclass")
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class DomainRecord(_Record):
    name: str
    description: str
    type: str
    owner_team: str
    spec: dict[str, Any]
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class ProductRecord(_Record):
    id: str
    domain: str
    name: str
    version: str
    status: str
    description: str
    tags: list[str]
    owners: dict[str, Any]
    spec: dict[str, Any]
    spec_hash: str
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class VersionRecord(_Record):
    id: int
    product_id: str
    semver: str
    spec_hash: str
    schema: list[dict[str, Any]]
    delta_version: int
    row_count: int
    run_id: str
    published_at: datetime


class RunStatus(StrEnum):
    """Where a run stands: ``running`` until its build ends, then how it ended. The values are
    what the catalog stores and what JSON, the CLI and the API show."""

    RUNNING = "running"
    SUCCESS = "success"
    """It published a version (or found one it had published before its process died)."""
    FAILED = "failed"
    BLOCKED = "blocked"
    """Its quality gate refused the staged data: nothing was published."""
    CONFLICT = "conflict"
    """Another build committed first: nothing was published."""

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclasses.dataclass(frozen=True)
class RunRecord(_Record):
    id: str
    product_id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    timings: dict[str, float]
    error: str | None
    spec_hash: str
    row_count: int | None
    delta_version: int | None
    host: str | None = None
    pid: int | None = None

    @property
    def duration(self) -> float | None:
        """Wall-clock seconds of the run, or None while it is still running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclasses.dataclass(frozen=True)
class QualityRecord(_Record):
    """One quality check's outcome; written by the build and read back by the CLI."""

    check_name: str
    check_type: str
    column: str | None
    severity: str
    passed: bool
    measured: Any
    threshold: Any
    message: str
    samples: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class LineageRecord(_Record):
    target: str
    source_kind: str
    source: str
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class PolicyRecord(_Record):
    product_id: str
    semver: str
    spec_hash: str
    run_id: str | None
    policy: str
    rule: str
    enforcement: str
    origin: str
    outcome: str
    message: str
    hint: str | None
    violations: list[dict[str, Any]]
    waiver: dict[str, Any] | None
    evaluated_at: datetime


@dataclasses.dataclass(frozen=True)
class ColumnLineageRecord(_Record):
    product_id: str
    column: str
    source: str
    classification: str
    pii: bool
