"""The generic row <-> record mapping, without a database, and against each repository's
record type (every record's fields must be columns of its table)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from meshkit.catalog import RunRecord, RunStatus
from meshkit.catalog.access import REQUEST, TOKEN
from meshkit.catalog.access_models import AccessRequest, Token
from meshkit.catalog.audit import CHECKPOINT, HEAD
from meshkit.catalog.audit_models import AuditCheckpoint, AuditHead
from meshkit.catalog.lineage import COLUMN, EDGE
from meshkit.catalog.mapping import RecordMap, check_choice, values_of
from meshkit.catalog.models import (
    Base,
    ColumnLineage,
    Domain,
    LineageEdge,
    PolicyResult,
    Product,
    ProductVersion,
    QualityResult,
    Run,
)
from meshkit.catalog.policies import POLICY
from meshkit.catalog.products import DOMAIN, PRODUCT
from meshkit.catalog.runs import QUALITY, RUN
from meshkit.catalog.versions import VERSION

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Pair:
    name: str
    tags: list[str]


def test_a_row_becomes_a_record_field_by_field_with_declared_conversions() -> None:
    mapping = RecordMap(Pair, convert={"tags": list})
    row = SimpleNamespace(name="orders", tags=("a", "b"), extra="ignored")
    assert mapping(row) == Pair("orders", ["a", "b"])
    assert RecordMap(Pair)(row) == Pair("orders", ("a", "b"))  # type: ignore[arg-type]


def test_a_conversion_of_no_field_is_refused_when_declared() -> None:
    with pytest.raises(TypeError, match="no field tag"):
        RecordMap(Pair, convert={"tag": list})


def test_values_of_a_record_name_its_fields() -> None:
    assert values_of(Pair("x", ["t"])) == {"name": "x", "tags": ["t"]}
    assert values_of(Pair("x", ["t"]), convert={"tags": len}) == {"name": "x", "tags": 1}


def test_run_status_is_read_as_the_enum_and_shown_as_its_value() -> None:
    row = Run(
        id="r1",
        product_id="sales.orders",
        status="blocked",
        started_at=AT,
        finished_at=AT,
        timings={},
        error=None,
        spec_hash="h",
        row_count=None,
        delta_version=None,
        host=None,
        pid=None,
    )
    run = RUN(row)
    assert isinstance(run, RunRecord)
    assert run.status is RunStatus.BLOCKED
    assert run.status == "blocked"
    assert run.to_dict()["status"] == "blocked"
    assert type(run.to_dict()["status"]) is str


def test_check_choice_names_the_vocabulary() -> None:
    check_choice("run status", "success", frozenset(RunStatus))
    with pytest.raises(
        ValueError, match=r"unknown run status 'great'; expected one of \['blocked'"
    ):
        check_choice("run status", "great", frozenset(s for s in RunStatus if s.finished))


@pytest.mark.parametrize(
    ("mapping", "model"),
    [
        (DOMAIN, Domain),
        (PRODUCT, Product),
        (VERSION, ProductVersion),
        (RUN, Run),
        (QUALITY, QualityResult),
        (EDGE, LineageEdge),
        (COLUMN, ColumnLineage),
        (POLICY, PolicyResult),
        (TOKEN, Token),
        (REQUEST, AccessRequest),
        (CHECKPOINT, AuditCheckpoint),
        (HEAD, AuditHead),
    ],
    ids=lambda value: getattr(value, "__name__", repr(value)),
)
def test_every_record_field_is_a_column_of_its_table(
    mapping: RecordMap[Any], model: type[Base]
) -> None:
    columns = set(model.__table__.columns.keys())
    assert set(mapping.names) <= columns, f"{mapping} reads {set(mapping.names) - columns}"
