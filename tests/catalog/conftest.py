"""Fixtures giving each test a fresh catalog: a SQLite file, and PostgreSQL when configured.

Set ``MESHKIT_TEST_POSTGRES_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
to run every catalog test against PostgreSQL too. Each test gets its own schema there, so
parallel runs (pytest-xdist) never see each other's tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, make_url

from meshkit.catalog import Catalog

POSTGRES_URL = os.environ.get("MESHKIT_TEST_POSTGRES_URL", "")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL,
                reason="PostgreSQL catalog tests need MESHKIT_TEST_POSTGRES_URL",
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, of each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    yield from _postgres_schema_url(POSTGRES_URL)


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    """An open, migrated, empty catalog that is closed after the test."""
    opened = Catalog(catalog_url)
    try:
        yield opened
    finally:
        opened.close()


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    schema = f"t_{uuid4().hex}"
    admin = create_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
