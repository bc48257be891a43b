"""No request pins a real server: huge versions answer at once, a query whose client left is
interrupted, SIGTERM stops the server while a query runs; errors keep the one shape."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import psutil
import pytest

from api.served import (
    ADMIN,
    CONSUMER,
    CUSTOMERS,
    ENDLESS,
    OWNER,
    Server,
    StartServer,
    assert_error_shape,
)
from meshkit.workspace import Workspace

QUERY_TIMEOUT_S = 20  # access.query_timeout of the served mesh: longer than any wait below


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(access={"query_timeout": f"{QUERY_TIMEOUT_S}s"})


def _latest(server: Server) -> int:
    info = httpx.get(f"{server.url}/products/{CUSTOMERS}", headers=server.headers(OWNER))
    return int(info.json()["latest_version"]["delta_version"])


@pytest.mark.parametrize("version", [2**32, 10**15, 2**53 - 1])
def test_a_version_past_the_latest_answers_404_naming_it_within_the_timeout(
    server: Server, version: int
) -> None:
    """delta-rs walked towards such a version for ever; it is compared with the log first."""
    response = httpx.post(
        f"{server.url}/query",
        json={"sql": f"select count(*) from {CUSTOMERS}", "version": version},
        headers=server.headers(OWNER),
        timeout=QUERY_TIMEOUT_S,  # a hang fails here, with ReadTimeout
    )
    assert response.status_code == 404, response.text
    error = assert_error_shape(response)
    assert f"no version {version}" in error["message"]
    assert f"its latest version is {_latest(server)}" in error["message"]
    assert f"GET /products/{CUSTOMERS}/versions" in error["hint"]


def test_versions_beyond_what_json_carries_exactly_are_refused_by_the_schema(
    server: Server,
) -> None:
    for version in (10**18, 2**63, 10**20, -1):
        response = httpx.post(
            f"{server.url}/query",
            json={"sql": f"select count(*) from {CUSTOMERS}", "version": version},
            headers=server.headers(OWNER),
            timeout=QUERY_TIMEOUT_S,
        )
        assert response.status_code == 422, (version, response.text)
        assert assert_error_shape(response)["fields"][0]["field"] == "version"


def _cpu_percent(process: psutil.Process, seconds: float) -> float:
    process.cpu_percent(None)
    time.sleep(seconds)
    return float(process.cpu_percent(None))


def _idle_within(process: psutil.Process, seconds: float, threshold: float = 10.0) -> float:
    """The first 0.5 s sample under `threshold` percent, or the last one after `seconds`."""
    deadline = time.monotonic() + seconds
    sample = _cpu_percent(process, 0.5)
    while sample >= threshold and time.monotonic() < deadline:
        sample = _cpu_percent(process, 0.5)
    return sample


def _query_entries(server: Server) -> list[Any]:
    with Workspace(server.root) as ws:
        return [e for e in ws.catalog.audit.entries() if e.action == "query"]


def test_a_query_whose_client_disconnects_is_interrupted_and_the_server_goes_idle(
    server: Server,
) -> None:
    process = psutil.Process(server.process.pid)
    before = len(_query_entries(server))
    gone: list[BaseException] = []

    def client() -> None:
        try:
            httpx.post(
                f"{server.url}/query",
                json={"sql": ENDLESS},
                headers=server.headers(OWNER),
                timeout=3,  # the client gives up and closes the connection
            )
        except httpx.ReadTimeout as err:
            gone.append(err)

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(1)
    busy = _cpu_percent(process, 1)
    thread.join()
    assert gone, "the endless query answered"
    assert busy > 25, f"the query was not running ({busy}% CPU)"
    # well before access.query_timeout, the DuckDB work has stopped
    assert _idle_within(process, 5) < 10
    entries = _query_entries(server)[before:]
    assert [e.detail["error"] for e in entries] == [
        "the query was cancelled: the client disconnected"
    ]
    assert entries[0].detail["decision"] == "refused"
    # and the server still answers
    ok = httpx.post(
        f"{server.url}/query",
        json={"sql": f"select count(*) from {CUSTOMERS}"},
        headers=server.headers(OWNER),
        timeout=QUERY_TIMEOUT_S,
    )
    assert ok.json()["rows"] == [[1500]]


def test_sigterm_stops_the_server_within_5_s_while_a_query_runs(
    start_server: StartServer,
) -> None:
    server = start_server(access={"query_timeout": "10m"})
    process = psutil.Process(server.process.pid)
    answers: list[Any] = []

    def client() -> None:
        try:
            answers.append(
                httpx.post(
                    f"{server.url}/query",
                    json={"sql": ENDLESS},
                    headers=server.headers(OWNER),
                    timeout=60,
                )
            )
        except httpx.HTTPError as err:
            answers.append(err)

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(1)
    assert _cpu_percent(process, 1) > 25, "the query was not running"
    sent = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=5)  # raises TimeoutExpired past 5 s
    assert time.monotonic() - sent < 5
    thread.join(timeout=10)
    # cut off with a 503 that says so, not a 500
    assert [a.status_code for a in answers] == [503]
    assert answers[0].headers["retry-after"] == "1"
    assert "the server is stopping" in assert_error_shape(answers[0])["message"]
    # the running query was interrupted (not the process killed under it)
    assert _query_entries(server)[-1].detail["error"] == (
        "the query was cancelled: the server is stopping"
    )


def test_405_lists_every_method_of_the_path(server: Server) -> None:
    for path, allowed in (("/tokens", "GET, POST"), ("/access/requests", "GET, POST")):
        response = httpx.put(f"{server.url}{path}", headers=server.headers(ADMIN))
        assert response.status_code == 405
        assert response.headers["allow"] == allowed
        assert assert_error_shape(response)["code"] == "method_not_allowed"
        for method in allowed.split(", "):  # and each of them is served
            served = httpx.request(method, f"{server.url}{path}", headers=server.headers(ADMIN))
            assert served.status_code != 405


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\xff\xfe{\x00", "application/json"),  # not UTF-8
        (b'{"sql": ', "application/json"),  # malformed JSON
        (b"select 1", "text/plain"),  # not JSON at all
        (b"select 1", None),  # no content type
        (b"[1, 2]", "application/json"),  # JSON, not an object
    ],
    ids=["not-utf8", "malformed", "text", "no-content-type", "array"],
)
def test_every_unreadable_body_answers_422_in_the_one_shape(
    server: Server, content: bytes, content_type: str | None
) -> None:
    headers = server.headers(OWNER)
    if content_type:
        headers["Content-Type"] = content_type
    for path in ("/query", "/access/requests", "/tokens"):
        response = httpx.post(f"{server.url}{path}", content=content, headers=headers)
        assert response.status_code == 422, (path, response.text)
        error = assert_error_shape(response)
        assert error["code"] == "invalid_request"
        assert error["fields"][0]["field"] == "body"


def test_a_body_over_the_limit_answers_413_before_it_is_read(server: Server) -> None:
    huge = b'{"sql": "' + b"x" * (5 << 20) + b'"}'
    for body in (huge, iter([huge[i : i + 65536] for i in range(0, len(huge), 65536)])):
        response = httpx.post(
            f"{server.url}/query",
            content=body,
            headers={**server.headers(OWNER), "Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 413
        assert assert_error_shape(response)["code"] == "too_large"


def test_an_empty_principal_is_refused_by_the_schema(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    token_body = schema["components"]["schemas"]["TokenBody"]["properties"]["principal"]
    assert token_body["minLength"] == 1
    response = httpx.post(
        f"{server.url}/tokens", json={"principal": ""}, headers=server.headers(ADMIN)
    )
    assert response.status_code == 422
    assert assert_error_shape(response)["fields"][0]["field"] == "principal"


def test_every_declared_error_has_the_one_shape(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    shape = schema["components"]["schemas"]["ErrorBody"]
    assert shape["required"] == ["error"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"status", "code", "message", "hint"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
            if path != "/health":
                assert {"401", "503"} <= set(errors), (method, path)
            for status, answer in errors.items():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (method, path, status)


def test_a_consumer_without_grant_is_refused_not_hung(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/query",
        json={"sql": ENDLESS},
        headers=server.headers(CONSUMER),
        timeout=QUERY_TIMEOUT_S,
    )
    assert response.status_code == 403
    assert "no grant" in assert_error_shape(response)["message"]
