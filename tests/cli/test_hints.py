"""The CLI's words for the next steps core errors name: every step has them, word for word
what the CLI said before steps were neutral, and they are what Python callers read."""

from __future__ import annotations

import pytest

from meshkit.cli.hints import PHRASES
from meshkit.errors import (
    AccessDenied,
    ListProducts,
    MeshkitError,
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
    (ListProducts(), "`meshkit products` lists the products"),
    (NameProducts(), "name products as <domain>.<product>; `meshkit products` lists them"),
    (ShowVersions(product="sales.orders"), "`meshkit show sales.orders` lists its versions"),
    (ShowColumns(), "`meshkit show <domain>.<product>` lists its columns"),
    (
        RequestAccess(product="customer.customers"),
        "ask its owners: meshkit access request customer.customers --as <you> --purpose '...' "
        "--until YYYY-MM-DD (add --server URL --token T for a meshkit server)",
    ),
    (TokenExpiry(max_days=366), "pass --expires with a duration such as 30d or 12h"),
    (
        TimeTravel(),
        "time travel is asked for beside the SQL: meshkit.connect(url, token)"
        ".query(sql, version=N), or version/as_of in POST /query",
    ),
]


def test_every_next_step_has_cli_words() -> None:
    steps = {c for c in NextStep.__subclasses__() if c.__module__ == "meshkit.errors"}
    assert steps == set(PHRASES)
    assert {type(step) for step, _ in SAID} == set(PHRASES)


@pytest.mark.parametrize(("step", "words"), SAID, ids=lambda v: type(v).__name__)
def test_cli_words(step: NextStep, words: str) -> None:
    assert phrase(step, "cli") == words


def test_python_callers_read_the_cli_words() -> None:
    err = AccessDenied("you have no grant on sales.orders", hint=RequestAccess("sales.orders"))
    assert err.step == RequestAccess("sales.orders")
    assert err.hint == phrase(RequestAccess("sales.orders"), "cli")
    assert err.hint_for("cli") == err.hint
    assert str(err) == f"you have no grant on sales.orders (hint: {err.hint})"
    assert err.problems[0].hint == err.hint


def test_plain_advice_is_the_same_everywhere() -> None:
    err = MeshkitError("the end date is in the past", hint="pick a future date")
    assert err.step is None
    assert err.hint == err.hint_for("cli") == err.hint_for("api") == "pick a future date"
    assert MeshkitError("no hint").hint is None


def test_a_step_without_words_reads_as_itself() -> None:
    """Fail soft in an error path: a step a phrasebook lacks is shown, not a crash."""

    class Unworded(NextStep):
        pass

    assert (
        phrase(Unworded(), "cli") == "test_a_step_without_words_reads_as_itself.<locals>.Unworded()"
    )
