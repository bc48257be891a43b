"""The one fuzzy match behind "did you mean"."""

from __future__ import annotations

from meshkit.suggest import close_matches, did_you_mean


def test_the_closest_name_first() -> None:
    assert did_you_mean("ordres", ["customers", "orders", "order_lines"]) == "orders"
    assert close_matches("order", ["orders", "order_lines", "parts"]) == ["orders", "order_lines"]


def test_nothing_close_is_no_suggestion() -> None:
    assert did_you_mean("zzz", ["orders"]) is None
    assert close_matches("zzz", []) == []


def test_folding_ignores_case_and_answers_as_written() -> None:
    assert close_matches("CUSTOMER_KEY", ["customer_key", "Customer_Key"], fold=True) == [
        "customer_key"
    ]
    assert close_matches("CUSTOMER_KEY", ["customer_key"]) == []  # case counts without it
