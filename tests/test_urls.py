"""meshkit.urls: the one masking of URLs, for a URL and for text that quotes URLs."""

from __future__ import annotations

import pytest

from meshkit.urls import mask_password, mask_url

URLS = [
    "postgresql+psycopg://ann:p%40ss@db:5432/sales",
    "postgresql://ann@db/sales?password=topsecret&sslmode=require",
    "mssql+pyodbc://sa:pw@dsn?PWD=x&driver=y",
    "sqlite:///data/shop.db",
    "postgresql://ann:topsecret@db:port/sales",  # SQLAlchemy cannot parse the port
]


@pytest.mark.parametrize("url", URLS)
def test_masking_is_idempotent(url: str) -> None:
    masked = mask_url(url)
    assert mask_url(masked) == masked
    stored = mask_password(masked)  # as the catalog stores a lineage source
    assert mask_password(stored) == stored
    assert stored.replace("***", "%2A%2A%2A") in (masked, masked.replace("***", "%2A%2A%2A"))


@pytest.mark.parametrize("url", URLS)
def test_no_secret_survives(url: str) -> None:
    for secret in ("p%40ss", "topsecret", "PWD=x", ":pw@"):
        assert secret not in mask_url(url)


def test_an_unparsable_url_is_masked_as_text() -> None:
    assert mask_url("postgresql://ann:topsecret@db:port/sales?token=abc") == (
        "postgresql://ann:***@db:port/sales?token=***"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://etl:hunter2/x@db.internal:${PORT}/sales",  # unparsable, '/' in the password
        "mysql://u:pa/ss@host:port/db",
    ],
)
def test_a_slash_in_the_password_of_an_unparsable_url_is_masked(url: str) -> None:
    for masked in (mask_url(url), mask_password(f"cannot parse database URL '{url}'")):
        assert "hunter2" not in masked
        assert "pa/ss" not in masked
        assert ":***@" in masked
