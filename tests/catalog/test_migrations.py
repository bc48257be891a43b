"""The hand-written migrations must build exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from meshkit.catalog import Catalog
from meshkit.catalog.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revisions,
    head_revisions,
)
from meshkit.catalog.models import Base
from meshkit.errors import CatalogError

TABLES = {
    "column_lineage",
    "policy_results",
    "alembic_version",
    "domains",
    "products",
    "product_versions",
    "runs",
    "quality_results",
    "lineage_edges",
    "audit_log",
    "audit_checkpoints",
    "audit_head",
    "tokens",
    "access_requests",
}


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    """A plain engine on the test database, independent of any ``Catalog``."""
    created = create_engine(catalog_url)
    try:
        yield created
    finally:
        created.dispose()


def test_migrations_ship_inside_the_package() -> None:
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (MIGRATIONS_DIR / name).is_file(), name
    assert head_revisions() == {"0005"}


def test_migrated_schema_matches_models(catalog_url: str, engine: Engine) -> None:
    Catalog(catalog_url).close()
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == TABLES
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert current_revisions(conn) == head_revisions()


def test_downgrade_then_upgrade_round_trips(catalog_url: str, engine: Engine) -> None:
    Catalog(catalog_url).close()
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
        assert set(inspect(conn).get_table_names()) == {"alembic_version"}
        assert current_revisions(conn) == set()
    with Catalog(catalog_url) as catalog:
        assert catalog.products.domains() == []
    with engine.connect() as conn:
        assert current_revisions(conn) == head_revisions()


def test_catalog_from_a_newer_meshkit_is_refused(catalog_url: str, engine: Engine) -> None:
    Catalog(catalog_url).close()
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(CatalogError, match="revision 9999") as caught:
        Catalog(catalog_url)
    assert caught.value.hint is not None
    assert "newer meshkit" in caught.value.hint


def test_a_catalog_at_0001_upgrades_in_place(catalog_url: str, engine: Engine) -> None:
    """Runs recorded before 0002 keep their data and gain empty host/pid columns."""
    with engine.begin() as conn:
        config = alembic_config(conn)
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "insert into domains values ('sales', 'd', 'source-aligned', 't', '{}', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "insert into runs (id, product_id, status, started_at, timings, spec_hash) "
                "values ('r1', 'sales.orders', 'success', CURRENT_TIMESTAMP, '{}', 'h')"
            )
        )
    with Catalog(catalog_url) as catalog:
        (run,) = catalog.runs.recent("sales.orders")
    assert run.id == "r1"
    assert run.host is None
    assert run.pid is None
