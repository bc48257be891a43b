"""The product search that the catalog's reads and the workspace's listing share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshkit import Workspace
from meshkit.catalog.search import matches

from conftest import MakeMesh, product_spec

ORDERS = {"id": "sales.orders", "description": "Every order, daily", "tags": ["Core", "pii"]}


@pytest.mark.parametrize(
    ("search", "found"),
    [
        (None, True),
        ("", True),
        ("ORDERS", True),  # id, any case
        ("daily", True),  # description
        ("core", True),  # tag
        ("PI", True),  # part of a tag
        ("sales.ord", True),
        ("revenue", False),
        ("orders daily", False),  # one field at a time, not their concatenation
    ],
)
def test_case_insensitive_substring_of_id_description_or_a_tag(
    search: str | None, found: bool
) -> None:
    assert matches(search, **ORDERS) is found  # type: ignore[arg-type]


def test_case_folding_beyond_ascii() -> None:
    assert matches("STRASSE", id="geo.straße", description="", tags=[])


def test_the_workspace_listing_and_the_catalog_find_the_same_products(
    make_mesh: MakeMesh, workspace_of: Callable[[Path], Workspace]
) -> None:
    root = make_mesh(
        {
            "sales": {
                "orders": product_spec("orders", tags=["Core"]),
                "customers": product_spec("customers", description="Who buys", tags=["pii"]),
            },
            "finance": {"revenue": product_spec("revenue", description="Money per Customer")},
        }
    )
    ws = workspace_of(root)
    ws.sync.register(sorted(ws.mesh.products))
    for search in (None, "CUSTOMER", "core", "PI", "sales.", "nothing at all"):
        listed = [row["id"] for row in ws.list_products(search=search)]
        found = [p.id for p in ws.catalog.products.find(search=search)]
        assert listed == found, search
    assert [row["id"] for row in ws.list_products(search="CUSTOMER")] == [
        "finance.revenue",
        "sales.customers",
    ]
