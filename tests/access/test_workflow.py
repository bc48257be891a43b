"""The access workflow's edges: expiry on a moved clock, webhooks retried and signed, tokens
made over the API by admins only, and names written in any case."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from fastapi.testclient import TestClient

from access.conftest import CONSUMER, CUSTOMERS, OWNER
from meshkit.access.identity import LOCAL
from meshkit.api import create_app
from meshkit.errors import AccessDenied, AuthError
from meshkit.events import webhooks
from meshkit.specs.access import Webhook
from meshkit.workspace import Workspace

from conftest import copy_mesh


def test_grants_and_tokens_expire(granted: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    access = granted.access
    caller = access.caller(CONSUMER)
    _, token = access.create_token(CONSUMER, ttl=timedelta(days=2), by=LOCAL)
    assert access.query(caller, f"select count(*) from {CUSTOMERS}").table.num_rows == 1
    assert access.authenticate(token).name == CONSUMER
    later = datetime.now(UTC) + timedelta(days=31)  # past the grant's end (30 days)
    monkeypatch.setattr(access, "now", lambda: later)
    with pytest.raises(AccessDenied, match="no grant"):
        access.query(caller, f"select count(*) from {CUSTOMERS}")
    assert access.grants(caller) == []
    with pytest.raises(AuthError):
        access.authenticate(token)


def test_product_names_are_case_insensitive(granted: Workspace) -> None:
    caller = granted.access.caller(CONSUMER)
    table = granted.access.query(caller, "select count(*) as n from Customer.CUSTOMERS").table
    assert table.column("n")[0].as_py() > 0


class _Flaky(BaseHTTPRequestHandler):
    """Fails the first `fail` POSTs with 503, then accepts."""

    fail = 0
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Flaky.received.append((dict(self.headers), body))
        status = 503 if _Flaky.fail > 0 else 200
        _Flaky.fail -= 1
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    _Flaky.received.clear()
    server = HTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_webhooks_are_signed_and_retried(flaky: str) -> None:
    hook = Webhook(url=flaky, secret_env="HOOK_SECRET", events=["approved"])
    env = {"HOOK_SECRET": "k"}
    _Flaky.fail = 2
    (delivery,) = webhooks.deliver(
        [hook], "approved", {"request": {"id": "r1"}}, environ=env, sleep=lambda s: None
    )
    assert delivery.ok
    assert delivery.attempts == 3
    headers, body = _Flaky.received[-1]
    assert json.loads(body) == {"event": "approved", "request": {"id": "r1"}}
    assert (
        headers["X-Meshkit-Signature"]
        == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    )
    assert webhooks.deliver([hook], "denied", {}, environ=env) == []  # not subscribed

    _Flaky.fail = 5
    (failed,) = webhooks.deliver([hook], "approved", {}, environ=env, sleep=lambda s: None)
    assert not failed.ok
    assert failed.attempts == 3
    assert failed.error == "HTTP 503"
    (unsigned,) = webhooks.deliver([hook], "approved", {}, environ={})
    assert not unsigned.ok
    assert "HOOK_SECRET" in (unsigned.error or "")


def test_a_receiver_that_is_down_is_audited_not_fatal(
    built_example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_mesh(built_example, tmp_path / "mesh")
    spec = yaml.safe_load((root / "mesh.yaml").read_text())
    spec["access"]["webhooks"] = [{"url": "http://127.0.0.1:9/", "secret_env": "HOOK_SECRET"}]
    (root / "mesh.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("HOOK_SECRET", "k")
    monkeypatch.setattr(webhooks, "BACKOFF_S", (0.0, 0.0))
    with Workspace(root) as ws:
        request = ws.access.request(
            ws.access.caller(CONSUMER),
            CUSTOMERS,
            purpose="webhook receiver down test",
            until=datetime.now(UTC) + timedelta(days=1),
        )
        assert request.status == "pending"  # the request stands
        failures = [e for e in ws.catalog.audit.entries() if e.action == "webhook.failed"]
        assert failures[-1].detail["attempts"] == 3
        assert ws.verify_audit().ok


def test_only_admins_make_tokens_over_the_api(granted: Workspace) -> None:
    client = TestClient(create_app(granted), raise_server_exceptions=False)
    admin = granted.access.create_token(
        "platform-team@example.com", ttl=timedelta(hours=1), by=LOCAL
    )[1]
    user = granted.access.create_token(CONSUMER, ttl=timedelta(hours=1), by=LOCAL)[1]
    made = client.post(
        "/tokens",
        json={"principal": OWNER, "expires_in_days": 1},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert made.status_code == 201
    assert made.json()["token"].startswith("mk_")
    assert "secret_hash" not in made.json()
    refused = client.post(
        "/tokens", json={"principal": OWNER}, headers={"Authorization": f"Bearer {user}"}
    )
    assert refused.status_code == 403
    mine = client.get("/tokens", headers={"Authorization": f"Bearer {user}"}).json()["items"]
    assert {t["principal"] for t in mine} == {CONSUMER}
