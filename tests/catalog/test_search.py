"""The product search that the catalog's reads and the workspace's listing share."""

from __future__ import annotations

import pytest

from meshkit.catalog.search import matches

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
