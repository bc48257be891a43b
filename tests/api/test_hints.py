"""The API's words for the next steps core errors name: every step has them, word for word
what the API said before steps were neutral; an error answer carries them."""

from __future__ import annotations

import pytest

from meshkit.api.hints import PHRASES
from meshkit.errors import (
    AccessDenied,
    ListProducts,
    NameProducts,
    NextStep,
    RequestAccess,
    ShowColumns,
    ShowVersions,
    TimeTravel,
    TokenExpiry,
    phrase,
)

SAID = [
    (ListProducts(), "GET /products lists the products you can see"),
    (NameProducts(), "name products as <domain>.<product>; GET /products lists what you can see"),
    (
        ShowVersions(product="sales.orders"),
        "GET /products/sales.orders/versions lists the versions",
    ),
    (ShowColumns(), "check names against GET /products/{id}/schema"),
    (
        RequestAccess(product="customer.customers"),
        "request access: POST /access/requests with product customer.customers",
    ),
    (TokenExpiry(max_days=366), "expires_in_days is 1 to 366"),
    (TimeTravel(), "POST /query takes version and as_of"),
]


def test_every_next_step_has_api_words() -> None:
    steps = {c for c in NextStep.__subclasses__() if c.__module__ == "meshkit.errors"}
    assert steps == set(PHRASES)
    assert {type(step) for step, _ in SAID} == set(PHRASES)


@pytest.mark.parametrize(("step", "words"), SAID, ids=lambda v: type(v).__name__)
def test_api_words(step: NextStep, words: str) -> None:
    assert phrase(step, "api") == words


def test_an_error_names_the_endpoint_to_the_api() -> None:
    err = AccessDenied("no access to 'x.y', or no such product", hint=ListProducts())
    assert err.hint_for("api") == "GET /products lists the products you can see"
    assert err.hint == "`meshkit products` lists the products"
