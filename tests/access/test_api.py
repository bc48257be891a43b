"""The access workflow through the real HTTP API: in-process (ASGI) and on a real uvicorn."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import yaml
from fastapi.testclient import TestClient

import meshkit
from meshkit.access.identity import LOCAL
from meshkit.api import create_app
from meshkit.errors import AccessDenied, AuthError, MeshkitError
from meshkit.workspace import Workspace

CONSUMER = "lena.schmidt@example.com"
OWNER = "maria.gonzalez@example.com"
OTHER_OWNER = "chloe.dubois@example.com"  # owns marketing, not customer
C = "customer.customers"
SECRET = "s3cret-webhook-key"


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hooks.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def mesh_root(
    built_example: Path, tmp_path_factory: pytest.TempPathFactory, hook_server: str
) -> Path:
    root = tmp_path_factory.mktemp("api") / "mesh"
    shutil.copytree(built_example, root, symlinks=True)
    spec = yaml.safe_load((root / "mesh.yaml").read_text())
    spec["access"]["webhooks"] = [{"url": hook_server, "secret_env": "MESHKIT_TEST_HOOK_SECRET"}]
    spec["access"]["principals"].append(
        {"name": "product:sales.orders", "kind": "service", "attributes": {"region": "AMERICA"}}
    )
    (root / "mesh.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def ws(mesh_root: Path) -> Iterator[Workspace]:
    with Workspace(mesh_root) as workspace:
        yield workspace


@pytest.fixture(scope="module")
def client(ws: Workspace) -> TestClient:
    return TestClient(create_app(ws), raise_server_exceptions=False)


def token(ws: Workspace, who: str, days: int = 1) -> str:
    return ws.access.create_token(who, ttl=timedelta(days=days), by=LOCAL)[1]


def auth(t: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {t}"}


def test_request_approve_query_revoke_audit(
    ws: Workspace, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHKIT_TEST_HOOK_SECRET", SECRET)
    _Hooks.received.clear()
    consumer, owner = auth(token(ws, CONSUMER)), auth(token(ws, OWNER))
    sql = {"sql": f"select customer_name, phone, region from {C} order by customer_key limit 5"}

    assert client.post("/query", json=sql, headers=consumer).status_code == 403  # no grant yet
    until = (date.today() + timedelta(days=30)).isoformat()
    made = client.post(
        "/access/requests",
        json={"product": C, "purpose": "regional sales planning", "until": until},
        headers=consumer,
    )
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert made.json()["status"] == "pending"
    pending = client.get("/access/requests", headers=owner).json()["items"]
    assert request_id in [r["id"] for r in pending]
    approved = client.post(f"/access/requests/{request_id}/approve", json={}, headers=owner)
    assert approved.json()["status"] == "approved"

    masked = client.post("/query", json=sql, headers=consumer).json()
    assert [c["name"] for c in masked["columns"]] == ["customer_name", "phone", "region"]
    assert all(len(row[0]) == 64 and row[1].startswith("***") for row in masked["rows"])
    assert {row[2] for row in masked["rows"]} == {"EUROPE"}  # the row filter
    unmasked = client.post("/query", json=sql, headers=owner).json()  # the owning domain
    assert all(row[0].startswith("Customer#") for row in unmasked["rows"])

    arrow = client.post("/query", json={**sql, "format": "arrow"}, headers=consumer)
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 5
    assert arrow.headers["x-meshkit-rows"] == "5"
    csv = client.post("/query", json={**sql, "format": "csv"}, headers=consumer)
    assert csv.text.splitlines()[0] == '"customer_name","phone","region"'

    revoked = client.post(f"/access/grants/{request_id}/revoke", json={}, headers=owner)
    assert revoked.json()["status"] == "revoked"
    assert client.post("/query", json=sql, headers=consumer).status_code == 403

    actions = [e.action for e in ws.catalog.audit.entries()]
    for action in (
        "access.requested",
        "access.approved",
        "access.revoked",
        "query",
        "token.create",
    ):
        assert action in actions
    assert ws.verify_audit().ok
    events = [json.loads(body)["event"] for _, body in _Hooks.received]
    assert events == ["requested", "approved", "revoked"]
    headers, body = _Hooks.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Meshkit-Signature"] == expected


def test_auto_approve_for_internal_columns_of_the_listed_domain(
    ws: Workspace, client: TestClient
) -> None:
    consumer = auth(token(ws, "kenji.watanabe@example.com"))  # sales
    made = client.post(
        "/access/requests",
        json={
            "product": C,
            "purpose": "count customers per segment",
            "until": (date.today() + timedelta(days=5)).isoformat(),
            "columns": ["customer_key", "market_segment", "region"],
        },
        headers=consumer,
    ).json()
    assert (made["status"] == "approved" and made["auto"] is False) or made["status"] == "approved"
    rows = client.post(
        "/query", json={"sql": f"select region, count(*) from {C} group by 1"}, headers=consumer
    ).json()["rows"]
    assert [r[0] for r in rows] == ["ASIA"]
    refused = client.post("/query", json={"sql": f"select phone from {C}"}, headers=consumer)
    assert refused.status_code == 400  # phone was not granted: not in the view
    assert "phone" in refused.json()["error"]["message"]


def test_versions_are_newest_first_and_the_latest_is_the_newest(
    built_example: Path, tmp_path: Path
) -> None:
    """As docs/api.md says: `/versions` lists the newest first, `latest_version` is it."""
    root = tmp_path / "mesh"
    shutil.copytree(built_example, root, symlinks=True)
    with Workspace(root) as ws:
        [rebuilt] = ws.build([C], force=True)  # a second version of the product
        client = TestClient(create_app(ws), raise_server_exceptions=False)
        headers = auth(token(ws, OWNER))
        answer = client.get(f"/products/{C}/versions", headers=headers).json()
        listed = [v["delta_version"] for v in answer["items"]]
        assert listed == sorted(listed, reverse=True)
        assert len(listed) >= 2
        latest = client.get(f"/products/{C}", headers=headers).json()["latest_version"]
        assert latest["delta_version"] == listed[0] == rebuilt.delta_version


def test_a_data_product_as_consumer(ws: Workspace, client: TestClient) -> None:
    """A member of sales requests for its product; the product's own token then reads."""
    member, owner = auth(token(ws, CONSUMER)), auth(token(ws, OWNER))
    made = client.post(
        "/access/requests",
        json={
            "product": C,
            "purpose": "orders enrich customers' segments",
            "until": (date.today() + timedelta(days=5)).isoformat(),
            "consumer": "product:sales.orders",
        },
        headers=member,
    ).json()
    assert made["consumer"] == "product:sales.orders"
    client.post(f"/access/requests/{made['id']}/approve", json={}, headers=owner)
    product = auth(token(ws, "product:sales.orders"))
    rows = client.post(
        "/query", json={"sql": f"select distinct region from {C}"}, headers=product
    ).json()["rows"]
    assert rows == [["AMERICA"]]
    stranger = auth(token(ws, "chloe.dubois@example.com"))  # not a member of sales
    refused = client.post(
        "/access/requests",
        json={
            "product": C,
            "purpose": "orders enrich customers' segments",
            "until": (date.today() + timedelta(days=5)).isoformat(),
            "consumer": "product:sales.orders",
        },
        headers=stranger,
    )
    assert refused.status_code == 403


def test_tokens_unknown_expired_revoked_and_missing_get_401(
    ws: Workspace, client: TestClient
) -> None:
    good = token(ws, CONSUMER)
    assert client.get("/me", headers=auth(good)).json()["name"] == CONSUMER
    record_id = good.split("_")[1]
    ws.access.revoke_token(record_id, by=LOCAL)
    expired_record, expired = ws.access.create_token(CONSUMER, ttl=timedelta(seconds=1), by=LOCAL)
    time.sleep(1.1)
    for headers in (
        {},
        auth("mk_nope_nope"),
        auth(good),
        auth(expired),
        auth(good[:-2] + "xx"),
        {"Authorization": "Basic abc"},
    ):
        response = client.get("/products", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert expired_record.expires_at < datetime.now(UTC)


def test_another_domains_request_cannot_be_decided_or_seen(
    ws: Workspace, client: TestClient
) -> None:
    consumer, other = auth(token(ws, CONSUMER)), auth(token(ws, OTHER_OWNER))
    until = (date.today() + timedelta(days=3)).isoformat()
    made = client.post(
        "/access/requests",
        json={"product": C, "purpose": "another regional planning", "until": until},
        headers=consumer,
    ).json()
    assert made["id"] not in [
        r["id"] for r in client.get("/access/requests", headers=other).json()["items"]
    ]
    denied = client.post(f"/access/requests/{made['id']}/approve", json={}, headers=other)
    missing = client.post("/access/requests/doesnotexist/approve", json={}, headers=other)
    assert denied.status_code == missing.status_code == 403
    assert denied.json()["error"]["message"].replace(made["id"], "X") == missing.json()["error"][
        "message"
    ].replace("doesnotexist", "X")


def test_hidden_products_answer_like_missing_ones(mesh_root: Path) -> None:
    """A restricted product is hidden from outsiders: 403 with the body of a missing one."""
    with Workspace(mesh_root) as ws:
        product = ws.mesh.products["customer.contacts"]
        spec = product.spec.model_copy(update={"classification": "restricted"})
        ws.mesh.products["customer.contacts"] = dataclasses.replace(product, spec=spec)
        client = TestClient(create_app(ws), raise_server_exceptions=False)
        consumer = auth(token(ws, CONSUMER))
        hidden = client.get("/products/customer.contacts", headers=consumer)
        missing = client.get("/products/customer.nothing", headers=consumer)
        assert hidden.status_code == missing.status_code == 403
        assert hidden.json()["error"]["message"].replace("contacts", "X") == missing.json()[
            "error"
        ]["message"].replace("nothing", "X")
        listed = [
            p["id"] for p in client.get("/products?limit=500", headers=consumer).json()["items"]
        ]
        assert "customer.contacts" not in listed
        assert "customer.customers" in listed
        member = auth(token(ws, OWNER))
        assert client.get("/products/customer.contacts", headers=member).status_code == 200


# (method, path, body, a wrong call for an authenticated consumer)
ENDPOINTS: list[tuple[str, str, Any, tuple[str, Any]]] = [
    ("GET", "/me", None, ("/me/x", None)),
    ("GET", "/domains", None, ("/domains?limit=0", None)),
    ("GET", "/products", None, ("/products?offset=-1", None)),
    ("GET", f"/products/{C}", None, ("/products/hr.salaries", None)),
    ("GET", f"/products/{C}/schema", None, ("/products/hr.salaries/schema", None)),
    ("GET", f"/products/{C}/versions", None, (f"/products/{C}/versions?limit=9999", None)),
    ("GET", f"/products/{C}/runs", None, ("/products/nope/runs", None)),
    ("GET", f"/products/{C}/quality", None, ("/products/nope/quality", None)),
    ("GET", f"/products/{C}/lineage", None, ("/products/nope/lineage", None)),
    (
        "POST",
        "/access/requests",
        {"product": C},
        ("/access/requests", {"product": C, "purpose": "x"}),
    ),
    ("GET", "/access/requests", None, ("/access/requests?limit=abc", None)),
    ("POST", "/access/requests/x/approve", {}, ("/access/requests/x/approve", {})),
    ("POST", "/access/requests/x/deny", {}, ("/access/requests/x/deny", {"reason": 5, "extra": 1})),
    ("POST", "/access/grants/x/revoke", {}, ("/access/grants/x/revoke", {})),
    ("GET", "/access/grants", None, ("/access/grants?offset=x", None)),
    ("POST", "/tokens", {"principal": CONSUMER}, ("/tokens", {"principal": CONSUMER})),
    ("GET", "/tokens", None, ("/tokens?limit=-3", None)),
    ("DELETE", "/tokens/x", None, ("/tokens/x", None)),
    (
        "POST",
        "/query",
        {"sql": "select 1"},
        ("/query", {"sql": "select * from read_csv('/etc/passwd')"}),
    ),
    ("GET", "/audit/verify", None, ("/audit/verify", None)),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "wrong"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_every_endpoint_answers_errors_in_one_shape(
    ws: Workspace, client: TestClient, method: str, path: str, body: Any, wrong: tuple[str, Any]
) -> None:
    """401 without a token; a wrong call (bad field, bad page, refused, hidden) with one:
    every error is {"error": {status, code, message, hint}}."""
    shapes = [client.request(method, path, json=body)]
    assert shapes[0].status_code == 401
    shapes.append(
        client.request(method, wrong[0], json=wrong[1], headers=auth(token(ws, CONSUMER)))
    )
    for response in shapes:
        assert response.status_code >= 400, (method, path, response.text)
        error = response.json()["error"]
        assert set(error) >= {"status", "code", "message", "hint"}
        assert error["status"] == response.status_code
        assert error["message"]


def test_pagination_and_openapi(ws: Workspace, client: TestClient) -> None:
    headers = auth(token(ws, CONSUMER))
    first = client.get("/products?limit=4", headers=headers).json()
    assert len(first["items"]) == 4
    assert first["next_offset"] == 4
    rest = client.get(f"/products?limit=50&offset={first['next_offset']}", headers=headers).json()
    ids = [p["id"] for p in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == first["total"]
    assert rest["next_offset"] is None
    schema = client.get("/openapi.json").json()
    assert {"/query", "/products", "/access/requests"} <= set(schema["paths"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_real_uvicorn_and_the_python_client(ws: Workspace, mesh_root: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "meshkit", "serve", "--mesh", str(mesh_root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with httpx.Client() as probe:
                    if probe.get(f"{url}/health").status_code == 200:
                        break
            except httpx.HTTPError:
                time.sleep(0.1)
        with (
            meshkit.connect(url, token(ws, CONSUMER)) as consumer,
            meshkit.connect(url, token(ws, OWNER)) as owner,
            meshkit.connect(url, "mk_bad_token") as stranger,
        ):
            assert any(p["id"] == C for p in consumer.products())
            assert "customer_name" in [c["name"] for c in consumer.product(C).schema]
            made = consumer.request_access(
                C,
                purpose="uvicorn end to end test",
                until=date.today() + timedelta(days=2),
                columns=["customer_key", "customer_name", "region"],
            )
            owner.approve(made["id"])
            result = consumer.query(
                f"select customer_name, region from {C} order by customer_key limit 3"
            )
            frame = result.to_pandas()
            assert list(frame.columns) == ["customer_name", "region"]
            assert all(len(v) == 64 for v in frame["customer_name"])
            assert result.to_polars().height == 3
            owner.revoke(made["id"])
            with pytest.raises(AccessDenied):
                consumer.query(f"select count(*) from {C}")
            with pytest.raises(AuthError):
                stranger.products()
            with pytest.raises(MeshkitError, match="purpose"):  # a 422, as a plain error
                consumer.request_access(C, purpose="short", until=date.today())
        assert ws.verify_audit().ok
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_quality_details_and_run_errors_stay_in_the_owning_domain(
    ws: Workspace, client: TestClient
) -> None:
    """Measured values, messages and failing rows are unmasked data: only members see them."""
    consumer, owner = auth(token(ws, CONSUMER)), auth(token(ws, OWNER))
    outside = client.get(f"/products/{C}/quality", headers=consumer).json()["checks"]
    inside = client.get(f"/products/{C}/quality", headers=owner).json()["checks"]
    assert outside
    assert len(outside) == len(inside)
    assert all(
        set(c) == {"check_name", "check_type", "column", "severity", "passed"} for c in outside
    )
    assert any("measured" in c for c in inside)
    runs_outside = client.get(f"/products/{C}/runs", headers=consumer).json()["items"]
    runs_inside = client.get(f"/products/{C}/runs", headers=owner).json()["items"]
    assert all("host" not in r and "error" not in r for r in runs_outside)
    assert all("host" in r for r in runs_inside)


def test_the_workspace_gives_a_caller_what_the_api_shows(ws: Workspace, client: TestClient) -> None:
    """The API's discovery answers come from Workspace methods a portal can call as well."""
    consumer, owner = ws.access.caller(CONSUMER), ws.access.caller(OWNER)
    headers = auth(token(ws, CONSUMER))
    runs = client.get(f"/products/{C}/runs", headers=headers).json()["items"]
    assert ws.product_runs(consumer, C, limit=50, offset=0) == json.loads(json.dumps(runs))
    assert all("host" in r for r in ws.product_runs(owner, C, limit=50, offset=0))
    quality = ws.product_quality(consumer, C)
    answer = client.get(f"/products/{C}/quality", headers=headers).json()
    assert (quality.run, len(quality.checks)) == (answer["run"], len(answer["checks"]))
    assert all("measured" not in c for c in quality.checks)
    lineage = ws.product_lineage(consumer, C)
    answer = client.get(f"/products/{C}/lineage", headers=headers).json()
    assert (lineage.edges, lineage.columns) == (answer["edges"], answer["columns"])
    versions = ws.product_versions(consumer, C)
    answer = client.get(f"/products/{C}/versions", headers=headers).json()
    assert [v.delta_version for v in versions] == [v["delta_version"] for v in answer["items"]]
    listed = [p["id"] for p in ws.products_for(consumer, domain="customer")]
    answer = client.get("/products?domain=customer", headers=headers).json()
    assert listed == [p["id"] for p in answer["items"]]
    assert ws.products_for(consumer, domain="nope") == []
    with pytest.raises(AccessDenied, match="or no such product"):
        ws.product_runs(consumer, "customer.nope", limit=1, offset=0)
    with pytest.raises(AccessDenied, match="governance group"):
        ws.verify_audit_as(consumer)
    assert ws.verify_audit_as(ws.access.caller("platform-team@example.com")).ok
