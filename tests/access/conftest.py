"""Fixtures of the access tests: a built example mesh with grants in place (shared by the tests
of one module), and empty catalogs of each backend for the audit log tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import JSON, Engine, bindparam, create_engine, make_url, text

from meshkit.catalog import Catalog
from meshkit.catalog.models import UTCDateTime
from meshkit.workspace import Workspace

OWNER = "maria.gonzalez@example.com"  # owner of the customer domain
CONSUMER = "lena.schmidt@example.com"  # sales maintainer, region EUROPE, clearance internal
NO_GRANT = "kenji.watanabe@example.com"  # sales viewer, region ASIA, no grant on customers
CUSTOMERS = "customer.customers"


@pytest.fixture(scope="module")
def granted(built_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A copy of the built example where CONSUMER holds an approved grant on customers, and
    customers has two published versions (for time travel)."""
    root = tmp_path_factory.mktemp("access") / "mesh"
    shutil.copytree(built_example, root, symlinks=True)
    with Workspace(root) as ws:
        ws.build([CUSTOMERS])  # a second version
        request = ws.access.request(
            ws.access.caller(CONSUMER),
            CUSTOMERS,
            purpose="regional sales planning for Europe",
            until=datetime.now(UTC) + timedelta(days=30),
        )
        ws.access.approve(ws.access.caller(OWNER), request.id)
        yield ws


POSTGRES_URL = os.environ.get("MESHKIT_TEST_POSTGRES_URL", "")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL, reason="PostgreSQL audit tests need MESHKIT_TEST_POSTGRES_URL"
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend; on PostgreSQL a schema of its own, dropped after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    schema = f"t_{uuid4().hex}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()


@pytest.fixture
def catalog(catalog_url: str) -> Iterator[Catalog]:
    with Catalog(catalog_url) as opened:
        yield opened


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def sql(catalog_url: str) -> Iterator[Callable[..., None]]:
    """Run raw SQL against the catalog's database, as an intruder would."""
    engine: Engine = create_engine(catalog_url)

    def run(statement: str, **params: Any) -> None:
        query = text(statement)
        if "at" in params:
            query = query.bindparams(bindparam("at", type_=UTCDateTime()))
        if "detail" in params:
            query = query.bindparams(bindparam("detail", type_=JSON()))
        with engine.begin() as conn:
            conn.execute(query, params)

    yield run
    engine.dispose()
