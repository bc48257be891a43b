"""Opening, closing and failing to open the catalog's database (``backend.py``), against
SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from meshkit.catalog import Catalog
from meshkit.errors import CatalogError


def _add_domain(catalog: Catalog, name: str = "sales", **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "description": "Sales domain",
        "type": "source-aligned",
        "owner_team": "team-sales",
        "spec": {"name": name, "owners": ["a@example.com"]},
    }
    fields.update(overrides)
    catalog.products.upsert_domain(name=name, **fields)


# -- opening ----------------------------------------------------------------------------------


def test_opening_twice_keeps_data_and_schema(catalog_url: str) -> None:
    with Catalog(catalog_url) as first:
        _add_domain(first)
    with Catalog(catalog_url) as second, Catalog.for_url(catalog_url) as third:
        assert [d.name for d in second.products.domains()] == ["sales"]
        assert [d.name for d in third.products.domains()] == ["sales"]


def test_sqlite_catalog_creates_its_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "catalog.db"
    with Catalog(f"sqlite:///{path}") as catalog:
        _add_domain(catalog)
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_closed_catalog_refuses_work(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    catalog.close()
    catalog.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        catalog.products.domains()


# -- failures to open -------------------------------------------------------------------------


def _assert_tidy(error: CatalogError) -> None:
    text = str(error)
    assert "\n" not in text
    for noise in ("Traceback", "sqlalche.me", "[SQL", "Background on this error"):
        assert noise not in text
    assert error.hint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("definitely not a url", "not a database URL"),
        ("mysql://root:hunter2@localhost/meshkit", "'mysql' databases are not supported"),
        ("nonsense://x", "'nonsense' databases are not supported"),
    ],
)
def test_bad_url_is_a_catalog_error(url: str, expected: str) -> None:
    with pytest.raises(CatalogError, match=expected) as caught:
        Catalog(url)
    _assert_tidy(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unreachable_postgres_is_a_catalog_error_with_masked_password() -> None:
    url = "postgresql+psycopg://meshkit:hunter2@127.0.0.1:1/catalog?connect_timeout=2"
    with pytest.raises(CatalogError) as caught:
        Catalog(url)
    _assert_tidy(caught.value)
    text = str(caught.value)
    assert "hunter2" not in text
    assert "meshkit:***@127.0.0.1:1/catalog" in text
    assert caught.value.hint is not None
    assert "server is running" in caught.value.hint


def test_sqlite_directory_that_cannot_exist_is_a_catalog_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(CatalogError, match="cannot open the catalog") as caught:
        Catalog(f"sqlite:///{blocker / 'catalog.db'}")
    _assert_tidy(caught.value)


def test_file_that_is_not_a_database_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    path.write_bytes(b"this is not a sqlite database, just some text " * 100)
    with pytest.raises(CatalogError, match="not a database") as caught:
        Catalog(f"sqlite:///{path}")
    _assert_tidy(caught.value)
