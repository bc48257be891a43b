"""The team setup: the same builds with the catalog in PostgreSQL instead of SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from meshkit.workspace import Workspace


@pytest.fixture
def pg_catalog_url(postgres_url: str) -> Iterator[str]:
    """A fresh schema per test, so parallel tests never share catalog tables."""
    schema = f"cat_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_url)
    with admin.begin() as con:
        con.execute(sqlalchemy.text(f'create schema "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as con:
            con.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.mark.postgres
def test_example_mesh_builds_with_a_postgres_catalog(
    example_mesh: Path, pg_catalog_url: str
) -> None:
    with Workspace(example_mesh, catalog_url=pg_catalog_url) as ws:
        results = ws.build(upstream=["analytics.customer_revenue"])
        assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
        assert {p.id for p in ws.catalog.products.find()} == set(ws.mesh.products)
        versions = ws.catalog.versions.of("analytics.customer_revenue")
        assert (
            versions[0].row_count
            == ws.query("select count(*) as n from analytics.customer_revenue").to_pylist()[0]["n"]
        )
        edges = {
            (e.source_kind, e.source)
            for e in ws.catalog.lineage.edges("analytics.customer_revenue")
        }
        assert ("product", "sales.orders") in edges
    assert not (example_mesh / ".meshkit" / "catalog.db").exists(), "nothing went to SQLite"


def test_catalog_url_from_the_environment(
    example_mesh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MESHKIT_CATALOG_URL", url)
    with Workspace(example_mesh) as ws:
        (result,) = ws.build(["supply.suppliers"])
        assert result.ok, result.error
        assert ws.catalog_url == url
    assert (tmp_path / "elsewhere.db").is_file()
