"""Every parameter of every operation of the OpenAPI document, with extreme values, against a
real server: no 5xx, no hang, and every error in the one shape.

The operations and their parameters are read from the server's /openapi.json, so a new
endpoint or field is swept without a change here.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from api.served import ADMIN, CONSUMER, CUSTOMERS, OWNER, Server, StartServer, assert_error_shape

TIMEOUT_S = 20  # the served mesh's access.query_timeout: every answer comes before it
URL_HUGE = 60_000  # httpx sends URLs of up to 64 Ki characters; bodies get 1 MB
NUMBERS: list[Any] = [0, -1, 2**31, 2**53, 2**63, 10**20, -(10**20), 1e308, 0.5]
NUMERIC_TEXT = ["NaN", "inf", "-inf", "1e309", "0x10", "1_000", " 1", ""]
TEXT = ["", "名前\u202e🙂", "\x00", "../../etc/passwd", "' OR 1=1 --", "%00", "\\"]
TIMES = [
    "0000-01-01T00:00:00",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-23:59",
    "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "0000-01-01",
    "9999-12-31",
    "10000-01-01",
]
BASE_VALUES = {  # values that take a request past validation, to the code behind it
    "product_id": CUSTOMERS,
    "product": CUSTOMERS,
    "sql": f"select count(*) from {CUSTOMERS}",
    "principal": CONSUMER,
    "purpose": "extreme value sweep of the API",
    "until": (date.today() + timedelta(days=3)).isoformat(),
}


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(access={"query_timeout": f"{TIMEOUT_S}s"})


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(doc["components"]["schemas"][name], doc)
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if options:
        return {**schema, **_resolve(options[0], doc)}
    return schema


def _base(name: str, schema: dict[str, Any]) -> Any:
    if name in BASE_VALUES:
        return BASE_VALUES[name]
    kind = schema.get("type")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "array":
        return []
    if schema.get("format") == "date":
        return BASE_VALUES["until"]
    return "x" * max(1, schema.get("minLength", 1))


def _extremes(schema: dict[str, Any], *, in_url: bool) -> list[Any]:
    huge = "h" * (URL_HUGE if in_url else 1 << 20)
    values: list[Any] = [*NUMERIC_TEXT, *TEXT, huge, "é" * (URL_HUGE // 6 if in_url else 1 << 19)]
    if in_url:
        values += [str(n) for n in NUMBERS]
    else:
        values += [*NUMBERS, None, True, [], {}, [huge], {"x": 1}]
    if schema.get("format") in ("date", "date-time") or schema.get("type") == "integer":
        values += TIMES
    if schema.get("type") == "array":
        values += [[v] for v in (*TEXT, 2**63)] + [["c"] * 100_000]
    return values


def _cases(doc: dict[str, Any]) -> Iterator[tuple[str, str, str, str, Any]]:
    """(method, path, where, name, value) for each extreme value of each parameter."""
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = _resolve(parameter["schema"], doc)
                for value in _extremes(schema, in_url=True):
                    yield method, path, parameter["in"], parameter["name"], value
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _resolve(content["application/json"]["schema"], doc)
                for name, prop in body["properties"].items():
                    for value in _extremes(_resolve(prop, doc), in_url=False):
                        yield method, path, "body", name, value


def _request(
    client: httpx.Client,
    server: Server,
    doc: dict[str, Any],
    case: tuple[str, str, str, str, Any],
) -> httpx.Response:
    method, path, where, name, value = case
    operation = doc["paths"][path][method]
    params: dict[str, str] = {}
    url = path
    for parameter in operation.get("parameters", []):
        schema = _resolve(parameter["schema"], doc)
        given = value if (where, name) == (parameter["in"], parameter["name"]) else None
        if parameter["in"] == "path":
            text = str(given if given is not None else _base(parameter["name"], schema))
            url = url.replace("{" + parameter["name"] + "}", quote(text, safe=""))
        elif given is not None:
            params[parameter["name"]] = str(given)
    content = None
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body_schema is not None:
        schema = _resolve(body_schema["schema"], doc)
        body = {
            key: _base(key, _resolve(schema["properties"][key], doc))
            for key in schema.get("required", [])
        }
        if where == "body":
            body[name] = value
        content = json.dumps(body).encode()  # NaN and Infinity too, as Python writes them
    who = ADMIN if path.startswith(("/tokens", "/audit")) else OWNER
    return client.request(
        method,
        server.url + url,
        params=params,
        content=content,
        headers={**server.headers(who), "Content-Type": "application/json"},
        timeout=TIMEOUT_S,  # a hang fails the sweep with ReadTimeout
    )


def test_extreme_values_on_every_parameter_of_every_operation(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    cases = list(_cases(doc))
    swept = {(m, p) for m, p, *_ in cases}
    assert ("post", "/query") in swept
    assert ("get", "/products/{product_id}/runs") in swept
    assert len(swept) >= 15, swept
    problems: list[str] = []
    statuses: dict[int, int] = {}
    client = httpx.Client()  # one connection, kept alive: the sweep measures the server
    for case in cases:
        method, path, where, name, value = case
        label = f"{method.upper()} {path} {where}.{name}={str(value)[:40]!r}"
        try:
            response = _request(client, server, doc, case)
        except httpx.HTTPError as err:
            problems.append(f"{label}: {type(err).__name__} {err}")
            continue
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            problems.append(f"{label}: {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400:
            try:
                assert_error_shape(response)
            except (AssertionError, KeyError, ValueError) as err:
                problems.append(f"{label}: not the one shape ({err}): {response.text[:200]}")
    client.close()
    assert not problems, "\n".join(problems[:50])
    # the sweep reached the code behind validation, not only the validator
    assert statuses.get(422, 0) > 100
    assert statuses.get(200, 0) + statuses.get(201, 0) > 20, statuses


def test_paging_past_any_end_answers_an_empty_page(server: Server) -> None:
    headers = server.headers(OWNER)
    for path in ("/products", "/domains", f"/products/{CUSTOMERS}/runs", "/tokens"):
        page = httpx.get(f"{server.url}{path}?offset={2**53 - 1}&limit=500", headers=headers)
        assert page.status_code == 200, (path, page.text)
        assert page.json()["items"] == []
        assert page.json()["next_offset"] is None
        too_far = httpx.get(f"{server.url}{path}?offset=9223372036854775807", headers=headers)
        assert too_far.status_code == 422, (path, too_far.text)
        assert assert_error_shape(too_far)["fields"][0]["field"] == "query.offset"


def test_a_request_head_larger_than_the_http_layer_reads_is_refused_at_once(
    server: Server,
) -> None:
    """A 1 MB URL never reaches the app: uvicorn refuses it (400, plain text) and closes."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as conn:
        conn.sendall(b"GET /products?q=" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = conn.recv(200)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert time.monotonic() - started < TIMEOUT_S
    assert httpx.get(f"{server.url}/health").status_code == 200
