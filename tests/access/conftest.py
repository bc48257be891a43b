"""A built example mesh with grants in place, shared by the access tests of one module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

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
