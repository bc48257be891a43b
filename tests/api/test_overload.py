"""Overload: 120 concurrent clients, half listing products and half running slow queries,
against a real server with small limits. Beyond the limits they get fast 503s with
Retry-After, never a timeout; within them requests succeed."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from dataclasses import dataclass

import httpx
import pytest

import meshkit
from api.served import CUSTOMERS, ENDLESS, OWNER, Server, StartServer, assert_error_shape
from meshkit.errors import CatalogError, MeshkitError

CLIENTS = 120
SECONDS = 8  # each client sends requests, one after the other, for this long
QUEUE_TIMEOUT_S = 0.5
# About a second of DuckDB work: long enough that one query slot cannot keep up.
SLOW = (
    f"select count(*) from {CUSTOMERS} a, {CUSTOMERS} b, "
    f"(select customer_key from {CUSTOMERS} limit 60) c "
    "where (a.customer_key * 7 + b.customer_key * 3 + c.customer_key) % 1009 = 1"
)


@dataclass(frozen=True)
class Answer:
    kind: str
    status: int
    seconds: float
    retry_after: str | None
    error_ok: bool


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        access={"query_timeout": "60s"},
        flags=[
            *("--max-queries", "1", "--max-requests", "16"),
            *("--queue-timeout", str(QUEUE_TIMEOUT_S)),
        ],
    )


def _client(server: Server, kind: str, answers: list[Answer], failures: list[str]) -> None:
    headers = server.headers(OWNER)
    deadline = time.monotonic() + SECONDS
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                if kind == "query":
                    response = client.post(
                        f"{server.url}/query", json={"sql": SLOW}, headers=headers
                    )
                else:
                    response = client.get(f"{server.url}/products", headers=headers)
            except httpx.HTTPError as err:
                failures.append(f"{kind}: {type(err).__name__} {err}")
                continue
            error_ok = True
            if response.status_code >= 400:
                try:
                    assert_error_shape(response)
                except (AssertionError, KeyError, ValueError):
                    error_ok = False
            answers.append(
                Answer(
                    kind,
                    response.status_code,
                    time.monotonic() - started,
                    response.headers.get("retry-after"),
                    error_ok,
                )
            )


@pytest.mark.slow
def test_overload_answers_fast_503s_and_serves_what_fits(server: Server) -> None:
    one = httpx.post(
        f"{server.url}/query", json={"sql": SLOW}, headers=server.headers(OWNER), timeout=60
    )
    assert one.status_code == 200, one.text  # alone, the slow query answers
    answers: list[Answer] = []
    failures: list[str] = []
    threads = [
        threading.Thread(
            target=_client, args=(server, "query" if i % 2 else "products", answers, failures)
        )
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not [t for t in threads if t.is_alive()], "a client hung"
    assert not failures, failures[:10]  # no timeout, no dropped connection
    assert {a.status for a in answers} <= {200, 503}, {a.status for a in answers}
    refused = [a for a in answers if a.status == 503]
    served = [a for a in answers if a.status == 200]
    assert refused, "the limits were never reached"
    assert all(a.retry_after == "1" and a.error_ok for a in refused)
    # a refusal is fast: the wait for a slot, not a queue
    assert statistics.median(a.seconds for a in refused) < QUEUE_TIMEOUT_S + 1.5
    assert max(a.seconds for a in refused) < 10
    # within the limits, both kinds of request are served
    assert any(a.kind == "query" for a in served)
    assert any(a.kind == "products" for a in served)
    assert max(a.seconds for a in answers) < 20
    # and afterwards the server answers as before
    after = httpx.get(f"{server.url}/products", headers=server.headers(OWNER), timeout=10)
    assert after.status_code == 200


def test_the_python_client_waits_for_retry_after_then_gets_its_answer(server: Server) -> None:
    """One client holds the only query slot for 2 s; another is told 503 + Retry-After,
    waits, asks again and is answered. Without retries it gets the 503 as a MeshkitError
    (not a CatalogError: the catalog is fine)."""

    def hold() -> None:
        # gives up after 2 s: the server then interrupts the query and frees the slot
        with contextlib.suppress(httpx.ReadTimeout):
            httpx.post(
                f"{server.url}/query",
                json={"sql": ENDLESS},
                headers=server.headers(OWNER),
                timeout=2,
            )

    sql = f"select count(*) from {CUSTOMERS}"
    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.3)
    with meshkit.connect(server.url, server.tokens[OWNER], retries=0) as impatient:
        with pytest.raises(MeshkitError, match="queries at once") as refused:
            impatient.query(sql)
        assert not isinstance(refused.value, CatalogError)
        assert refused.value.hint == "retry after the seconds in Retry-After"
    started = time.monotonic()
    with meshkit.connect(server.url, server.tokens[OWNER], retries=5) as patient:
        assert patient.query(sql).table.to_pylist() == [{"count_star()": 1500}]
    assert time.monotonic() - started >= 1  # it waited for Retry-After at least once
    holder.join()
