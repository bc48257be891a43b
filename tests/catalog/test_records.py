"""JSON conversion of engine values, and credential masking, without a database."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from meshkit.catalog import QualityRecord, RunRecord
from meshkit.catalog.records import jsonable
from meshkit.urls import mask_password


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (3, 3),
        (2.5, 2.5),
        (float("inf"), "inf"),
        (Decimal("10.25"), 10.25),
        (Decimal("NaN"), "NaN"),
        (date(1998, 12, 1), "1998-12-01"),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
        (timedelta(minutes=2), 120.0),
        (b"\x01\x02", "AQI="),
        (Path("data/x.csv"), "data/x.csv"),
        ((1, "a"), [1, "a"]),
        ({1: {"nested": Decimal("1")}}, {"1": {"nested": 1.0}}),
    ],
)
def test_jsonable(value: Any, expected: Any) -> None:
    assert jsonable(value) == expected
    json.dumps(jsonable(value), allow_nan=False)


def test_jsonable_unwraps_numpy_and_arrow_values() -> None:
    np = pytest.importorskip("numpy")
    pa = pytest.importorskip("pyarrow")
    converted = jsonable(
        {"b": np.bool_(True), "i": np.int64(7), "f": np.float32(0.5), "a": np.arange(3)}
    )
    assert converted == {"b": True, "i": 7, "f": 0.5, "a": [0, 1, 2]}
    assert jsonable(pa.scalar(date(2020, 1, 1))) == "2020-01-01"


def test_record_to_dict_is_json_ready() -> None:
    started = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    run = RunRecord(
        id="abc",
        product_id="sales.orders",
        status="success",
        started_at=started,
        finished_at=started + timedelta(seconds=90),
        timings={"total": 90.0},
        error=None,
        spec_hash="h",
        row_count=10,
        delta_version=1,
    )
    assert run.duration == 90.0
    assert run.to_dict()["started_at"] == "2024-05-01T12:00:00+00:00"
    quality = QualityRecord("c", "range", "x", "error", False, Decimal("2"), 1, "m")
    assert quality.samples == []
    assert json.loads(json.dumps(quality.to_dict()))["measured"] == 2.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://u:p4ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg://u:p@ss@h/db/public.t", "postgresql+psycopg://u:***@h/db/public.t"),
        ("postgresql://u:***@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("mssql+pyodbc://sa@dsn?PWD=x&driver=y", "mssql+pyodbc://sa@dsn?PWD=***&driver=y"),
        (
            "failed for postgresql://a:b@c/d and mysql://e:f@g/h",
            "failed for postgresql://a:***@c/d and mysql://e:***@g/h",
        ),
        ("data/*.csv", "data/*.csv"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_mask_password(text: str, expected: str) -> None:
    assert mask_password(text) == expected
