"""Behaviour of the catalog's repositories (``catalog.products``, ``.runs``, ``.versions``,
``.lineage``) against a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from meshkit.catalog import Catalog, ProductRow, QualityRecord
from meshkit.errors import NotFoundError


def _add_domain(catalog: Catalog, name: str = "sales", **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "description": "Sales domain",
        "type": "source-aligned",
        "owner_team": "team-sales",
        "spec": {"name": name, "owners": ["a@example.com"]},
    }
    fields.update(overrides)
    catalog.products.upsert_domain(name=name, **fields)


def _add_product(catalog: Catalog, domain: str, name: str, **overrides: Any) -> str:
    product_id = f"{domain}.{name}"
    fields: dict[str, Any] = {
        "version": "1.0.0",
        "status": "active",
        "description": f"The {name} of {domain}",
        "tags": [],
        "owners": {"team": f"team-{domain}"},
        "spec": {"name": name},
        "spec_hash": "hash-1",
    }
    fields.update(overrides)
    catalog.products.upsert([ProductRow(id=product_id, domain=domain, name=name, **fields)])
    return product_id


def _published_run(catalog: Catalog, product_id: str) -> str:
    run_id = catalog.runs.start(product_id=product_id, spec_hash="hash-1")
    catalog.runs.finish(run_id, status="success", timings={"total": 0.1})
    return run_id


def _assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() is not None
    assert value.utcoffset() == UTC.utcoffset(value)
    assert abs((datetime.now(UTC) - value).total_seconds()) < 300


# -- domains and products ---------------------------------------------------------------------


def test_domain_upsert_and_read_back(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    _add_domain(catalog, "finance", description="Money")
    _add_domain(catalog, "sales", description="Updated", spec={"v": 2})

    domains = catalog.products.domains()
    assert [d.name for d in domains] == ["finance", "sales"]
    sales = domains[1]
    assert sales.description == "Updated"
    assert sales.type == "source-aligned"
    assert sales.owner_team == "team-sales"
    assert sales.spec == {"v": 2}
    _assert_utc(sales.updated_at)


def test_product_upsert_and_read_back(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    product_id = _add_product(
        catalog,
        "sales",
        "orders",
        tags=["core", "PII"],
        owners={"team": "sales", "people": ["x@example.com"]},
        spec={"name": "orders", "schema": {"columns": [{"name": "id", "type": "int"}]}},
    )
    _add_product(catalog, "sales", "orders", version="1.1.0", spec_hash="hash-2", tags=["core"])

    product = catalog.products.get(product_id)
    assert product.id == "sales.orders"
    assert product.domain == "sales"
    assert product.name == "orders"
    assert product.version == "1.1.0"
    assert product.status == "active"
    assert product.spec_hash == "hash-2"
    assert product.tags == ["core"]
    assert product.owners == {"team": "team-sales"}
    assert product.spec == {"name": "orders"}
    _assert_utc(product.updated_at)
    assert [p.id for p in catalog.products.find()] == ["sales.orders"]


def test_products_filter_by_domain_and_search(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    _add_domain(catalog, "finance")
    _add_product(catalog, "sales", "orders", tags=["Core"])
    _add_product(catalog, "sales", "customers", description="Who buys", tags=["pii"])
    _add_product(catalog, "finance", "revenue", description="Money per Customer")

    assert [p.id for p in catalog.products.find()] == [
        "finance.revenue",
        "sales.customers",
        "sales.orders",
    ]
    assert [p.id for p in catalog.products.find(domain="sales")] == [
        "sales.customers",
        "sales.orders",
    ]
    assert [p.id for p in catalog.products.find(search="CUSTOMER")] == [
        "finance.revenue",  # description
        "sales.customers",  # id
    ]
    assert [p.id for p in catalog.products.find(search="core")] == ["sales.orders"]  # tag
    assert [p.id for p in catalog.products.find(search="PI")] == ["sales.customers"]
    assert [p.id for p in catalog.products.find(domain="finance", search="pii")] == []
    assert catalog.products.find(domain="nowhere") == []


def test_product_in_unknown_domain_is_refused(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match="domain 'nowhere'"):
        _add_product(catalog, "nowhere", "orders")


def test_unknown_product_suggests_close_ids(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError) as empty:
        catalog.products.get("sales.orders")
    assert empty.value.hint is not None
    assert "no products yet" in empty.value.hint

    _add_domain(catalog, "sales")
    _add_product(catalog, "sales", "orders")
    _add_product(catalog, "sales", "customers")

    with pytest.raises(NotFoundError) as typo:
        catalog.products.get("sales.ordres")
    assert "sales.ordres" in typo.value.message
    assert typo.value.hint == "did you mean 'sales.orders'?"
    assert "did you mean 'sales.orders'?" in str(typo.value)

    with pytest.raises(NotFoundError) as bare_name:
        catalog.products.get("customers")
    assert bare_name.value.hint is not None
    assert "'sales.customers'" in bare_name.value.hint

    with pytest.raises(NotFoundError) as unrelated:
        catalog.products.get("zzz")
    assert unrelated.value.hint is not None
    assert "did you mean" not in unrelated.value.hint


# -- runs -------------------------------------------------------------------------------------


def test_run_lifecycle(catalog: Catalog) -> None:
    assert catalog.runs.last("sales.orders") is None
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="hash-1")
    assert len(run_id) == 32
    int(run_id, 16)  # a uuid4 hex

    running = catalog.runs.last("sales.orders")
    assert running is not None
    assert running.id == run_id
    assert running.status == "running"
    assert running.finished_at is None
    assert running.duration is None
    assert running.timings == {}
    _assert_utc(running.started_at)

    catalog.runs.finish(
        run_id,
        status="success",
        timings={"read": 0.5, "transform": 1.25, "publish": 2},
        row_count=42,
        delta_version=3,
    )
    done = catalog.runs.last("sales.orders")
    assert done is not None
    assert done.status == "success"
    assert done.timings == {"read": 0.5, "transform": 1.25, "publish": 2.0}
    assert done.row_count == 42
    assert done.delta_version == 3
    assert done.error is None
    assert done.spec_hash == "hash-1"
    assert done.finished_at is not None
    _assert_utc(done.finished_at)
    assert done.finished_at >= done.started_at
    assert done.duration is not None
    assert done.duration >= 0


def test_failed_run_keeps_its_error(catalog: Catalog) -> None:
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="h")
    catalog.runs.finish(run_id, status="blocked", timings={}, error="quality gate failed")
    run = catalog.runs.recent("sales.orders")[0]
    assert (run.status, run.error, run.row_count) == ("blocked", "quality gate failed", None)


def test_runs_newest_first_with_limit(catalog: Catalog) -> None:
    orders = [catalog.runs.start(product_id="sales.orders", spec_hash="h") for _ in range(4)]
    other = catalog.runs.start(product_id="finance.revenue", spec_hash="h")

    assert [r.id for r in catalog.runs.recent("sales.orders")] == orders[::-1]
    assert [r.id for r in catalog.runs.recent("sales.orders", limit=2)] == orders[:-3:-1]
    assert [r.id for r in catalog.runs.recent()] == [other, *orders[::-1]]
    assert [r.id for r in catalog.runs.recent(limit=1)] == [other]
    newest_first = orders[::-1]
    assert [r.id for r in catalog.runs.recent("sales.orders", limit=2, offset=1)] == newest_first[
        1:3
    ]
    assert [r.id for r in catalog.runs.recent("sales.orders", limit=2, offset=3)] == newest_first[
        3:
    ]
    # the database skips (a Python int the driver can bind), so any offset is a page
    assert catalog.runs.recent("sales.orders", limit=2, offset=2**63 - 1) == []
    last = catalog.runs.last("sales.orders")
    assert last is not None
    assert last.id == orders[-1]


def test_finishing_unknown_run_or_with_bad_status_fails(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        catalog.runs.finish("nope", status="success", timings={})
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="h")
    with pytest.raises(ValueError, match="run status"):
        catalog.runs.finish(run_id, status="running", timings={})
    with pytest.raises(ValueError, match="run status"):
        catalog.runs.finish(run_id, status="great", timings={})


# -- quality ----------------------------------------------------------------------------------


def test_quality_round_trip(catalog: Catalog) -> None:
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="h")
    results = [
        QualityRecord(
            check_name="orders_not_null",
            check_type="not_null",
            column="order_id",
            severity="error",
            passed=True,
            measured=0,
            threshold=0,
            message="no nulls in order_id",
            samples=[],
        ),
        QualityRecord(
            check_name="row_count",
            check_type="row_count",
            column=None,
            severity="warning",
            passed=False,
            measured=12.5,
            threshold={"min": 100, "max": None},
            message="12.5 rows is below the minimum of 100",
            samples=[{"order_id": 1, "status": "F", "note": None}],
        ),
        QualityRecord(
            check_name="freshness",
            check_type="freshness",
            column="shipped",
            severity="error",
            passed=False,
            measured=None,
            threshold="1 day",
            message="no rows at all",
        ),
    ]
    catalog.runs.record_quality(run_id, results)
    assert catalog.runs.quality(run_id) == results
    assert catalog.runs.quality("no-such-run") == []


def test_quality_values_from_engines_are_stored_as_json(catalog: Catalog) -> None:
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="h")
    catalog.runs.record_quality(
        run_id,
        [
            QualityRecord(
                check_name="price_range",
                check_type="range",
                column="price",
                severity="error",
                passed=False,
                measured=Decimal("1234.50"),
                threshold=float("nan"),
                message="out of range",
                samples=[{"price": Decimal("-1.25"), "day": date(1995, 3, 15), "raw": b"\x00"}],
            )
        ],
    )
    [stored] = catalog.runs.quality(run_id)
    assert stored.measured == 1234.5
    assert stored.threshold == "nan"
    assert stored.samples == [{"price": -1.25, "day": "1995-03-15", "raw": "AA=="}]


def test_quality_needs_a_known_run_and_severity(catalog: Catalog) -> None:
    record = QualityRecord("c", "not_null", "x", "error", True, 0, 0, "ok", [])
    with pytest.raises(NotFoundError):
        catalog.runs.record_quality("nope", [record])
    run_id = catalog.runs.start(product_id="sales.orders", spec_hash="h")
    with pytest.raises(ValueError, match="severity"):
        catalog.runs.record_quality(
            run_id, [QualityRecord("c", "t", None, "fatal", True, 1, 0, "", [])]
        )
    assert catalog.runs.quality(run_id) == []


# -- versions ---------------------------------------------------------------------------------


def test_versions_newest_first(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    product_id = _add_product(catalog, "sales", "orders")
    schema = [{"name": "order_id", "type": "bigint", "nullable": False}]
    runs = []
    for delta_version, semver in enumerate(["1.0.0", "1.0.1", "1.1.0"]):
        run_id = _published_run(catalog, product_id)
        runs.append(run_id)
        catalog.versions.record(
            product_id=product_id,
            semver=semver,
            spec_hash=f"hash-{delta_version}",
            schema=schema,
            delta_version=delta_version,
            row_count=10 * (delta_version + 1),
            run_id=run_id,
        )

    versions = catalog.versions.of(product_id)
    assert [v.delta_version for v in versions] == [2, 1, 0]
    assert [v.semver for v in versions] == ["1.1.0", "1.0.1", "1.0.0"]
    newest = versions[0]
    assert newest.product_id == product_id
    assert newest.schema == schema
    assert newest.row_count == 30
    assert newest.run_id == runs[2]
    assert newest.spec_hash == "hash-2"
    _assert_utc(newest.published_at)
    assert catalog.versions.of("sales.nothing") == []


def test_recording_a_delta_version_again_overwrites_it(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    product_id = _add_product(catalog, "sales", "orders")
    for row_count in (5, 7):
        catalog.versions.record(
            product_id=product_id,
            semver="1.0.0",
            spec_hash="h",
            schema=[],
            delta_version=0,
            row_count=row_count,
            run_id=_published_run(catalog, product_id),
        )
    [version] = catalog.versions.of(product_id)
    assert version.row_count == 7


def test_versions_need_known_product_and_run(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    product_id = _add_product(catalog, "sales", "orders")
    run_id = _published_run(catalog, product_id)
    common: dict[str, Any] = {"semver": "1.0.0", "spec_hash": "h", "schema": [], "row_count": 1}
    with pytest.raises(NotFoundError, match=r"sales\.nope"):
        catalog.versions.record(product_id="sales.nope", delta_version=0, run_id=run_id, **common)
    with pytest.raises(NotFoundError, match="no run"):
        catalog.versions.record(product_id=product_id, delta_version=0, run_id="nope", **common)


# -- lineage ----------------------------------------------------------------------------------


def _edges(catalog: Catalog, product_id: str | None = None) -> list[tuple[str, str, str]]:
    return [(e.target, e.source_kind, e.source) for e in catalog.lineage.edges(product_id)]


def test_lineage_replace_semantics(catalog: Catalog) -> None:
    catalog.lineage.replace(
        "sales.orders",
        [
            ("file", "data/orders/*.csv"),
            ("database", "postgresql://reader:s3cret@db.example.com:5432/erp/public.orders"),
            ("database", "mssql+pyodbc://sa@erp?driver=ODBC&pwd=s3cret/dbo.customers"),
            ("file", "data/orders/*.csv"),  # duplicates collapse
        ],
    )
    catalog.lineage.replace("finance.revenue", [("product", "sales.orders")])

    assert _edges(catalog, "sales.orders") == [
        ("finance.revenue", "product", "sales.orders"),
        ("sales.orders", "database", "mssql+pyodbc://sa@erp?driver=ODBC&pwd=***/dbo.customers"),
        (
            "sales.orders",
            "database",
            "postgresql://reader:***@db.example.com:5432/erp/public.orders",
        ),
        ("sales.orders", "file", "data/orders/*.csv"),
    ]
    assert "s3cret" not in json.dumps([e.to_dict() for e in catalog.lineage.edges()])

    catalog.lineage.replace("sales.orders", [("file", "data/orders/*.parquet")])
    assert _edges(catalog) == [
        ("finance.revenue", "product", "sales.orders"),
        ("sales.orders", "file", "data/orders/*.parquet"),
    ]
    assert _edges(catalog, "finance.revenue") == [("finance.revenue", "product", "sales.orders")]

    catalog.lineage.replace("sales.orders", [])
    assert _edges(catalog) == [("finance.revenue", "product", "sales.orders")]
    for edge in catalog.lineage.edges():
        _assert_utc(edge.updated_at)


def test_lineage_rejects_unknown_source_kind(catalog: Catalog) -> None:
    catalog.lineage.replace("sales.orders", [("file", "a.csv")])
    with pytest.raises(ValueError, match="source kind"):
        catalog.lineage.replace("sales.orders", [("kafka", "topic")])
    assert _edges(catalog) == [("sales.orders", "file", "a.csv")]


# -- records ----------------------------------------------------------------------------------


def test_every_record_serialises_to_json(catalog: Catalog) -> None:
    _add_domain(catalog, "sales")
    product_id = _add_product(catalog, "sales", "orders")
    run_id = _published_run(catalog, product_id)
    catalog.versions.record(
        product_id=product_id,
        semver="1.0.0",
        spec_hash="h",
        schema=[{"name": "id"}],
        delta_version=0,
        row_count=1,
        run_id=run_id,
    )
    catalog.runs.record_quality(
        run_id, [QualityRecord("c", "t", None, "warning", True, 1, 1, "", [])]
    )
    catalog.lineage.replace(product_id, [("file", "x.csv")])

    records = [
        *catalog.products.domains(),
        *catalog.products.find(),
        *catalog.versions.of(product_id),
        *catalog.runs.recent(),
        *catalog.runs.quality(run_id),
        *catalog.lineage.edges(),
    ]
    assert len(records) == 6
    for record in records:
        as_dict = record.to_dict()
        assert json.loads(json.dumps(as_dict)) == as_dict
    run = catalog.runs.recent()[0].to_dict()
    assert datetime.fromisoformat(run["started_at"]).tzinfo is not None


# -- concurrency ------------------------------------------------------------------------------


def test_two_writers_share_one_catalog(catalog_url: str) -> None:
    """Two open catalogs (as in two build processes) write at once without 'database is locked'."""
    errors: list[BaseException] = []
    with Catalog(catalog_url) as setup:
        _add_domain(setup, "sales")

    def build(product: str) -> None:
        try:
            with Catalog(catalog_url) as catalog:
                for i in range(15):
                    _add_domain(catalog, "sales", description=f"{product} {i}")
                    _add_product(catalog, "sales", product, version=f"1.0.{i}")
                    run_id = catalog.runs.start(product_id=f"sales.{product}", spec_hash="h")
                    catalog.lineage.replace(f"sales.{product}", [("file", f"{product}/{i}.csv")])
                    catalog.runs.finish(run_id, status="success", timings={"total": i})
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=build, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with Catalog(catalog_url) as catalog:
        assert len(catalog.runs.recent(limit=100)) == 45
        assert all(r.status == "success" for r in catalog.runs.recent(limit=100))
        assert [p.version for p in catalog.products.find()] == ["1.0.14"] * 3


def test_runs_of_dead_processes_are_closed(catalog: Catalog) -> None:
    _add_domain(catalog)
    pid = _add_product(catalog, "sales", "orders")
    alive = catalog.runs.start(product_id=pid, spec_hash="h", host="here", pid=100)
    died = catalog.runs.start(product_id=pid, spec_hash="h", host="here", pid=200)
    died_after_commit = catalog.runs.start(product_id=pid, spec_hash="h", host="here", pid=300)
    elsewhere = catalog.runs.start(product_id=pid, spec_hash="h", host="other-host", pid=200)
    catalog.versions.record(
        product_id=pid,
        semver="1.0.0",
        spec_hash="h",
        schema=[],
        delta_version=4,
        row_count=9,
        run_id=died_after_commit,
    )
    closed = catalog.runs.abandon(pid, host="here", dead=lambda p: p in (200, 300))
    assert sorted(closed) == sorted([died, died_after_commit])
    runs = {r.id: r for r in catalog.runs.recent(pid)}
    assert runs[alive].status == "running"
    assert runs[elsewhere].status == "running", "a process on another host cannot be checked"
    assert runs[died].status == "failed"
    assert "pid 200 on here" in (runs[died].error or "")
    assert runs[died_after_commit].status == "success"
    assert runs[died_after_commit].delta_version == 4
    assert runs[died].host == "here"
    assert runs[died].pid == 200
    assert catalog.runs.abandon(pid, host="here", dead=lambda p: True) == [alive]
