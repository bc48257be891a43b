"""Real `meshkit serve` processes over a copy of the built example mesh, and what tests of
them share (the fixture `start_server` is exported by conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from meshkit.access.identity import LOCAL
from meshkit.workspace import Workspace

OWNER = "maria.gonzalez@example.com"  # owner of the customer domain: reads it without a grant
CONSUMER = "lena.schmidt@example.com"  # sales, no grant on customer.customers
ADMIN = "platform-team@example.com"  # access.admins
CUSTOMERS = "customer.customers"
# Never finishes on its own (1500^4 rows): only a cancel or the timeout ends it.
ENDLESS = (
    "select sum((a.customer_key + b.customer_key + c.customer_key + d.customer_key) % 7) "
    f"from {CUSTOMERS} a, {CUSTOMERS} b, {CUSTOMERS} c, {CUSTOMERS} d"
)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def start_server(
    built_example: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """`start_server(access={...}, flags=[...])`: a server over its own copy of the built
    example, `access` merged into mesh.yaml's; tokens for OWNER, CONSUMER and ADMIN."""
    started: list[Server] = []

    def start(*, access: dict[str, Any] | None = None, flags: list[str] | None = None) -> Server:
        root = tmp_path_factory.mktemp("served") / "mesh"
        shutil.copytree(built_example, root, symlinks=True)
        spec = yaml.safe_load((root / "mesh.yaml").read_text())
        spec["access"].update(access or {})
        (root / "mesh.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        with Workspace(root) as ws:
            tokens = {
                who: ws.access.create_token(who, ttl=timedelta(days=1), by=LOCAL)[1]
                for who in (OWNER, CONSUMER, ADMIN)
            }
        port = free_port()
        log = root.parent / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "meshkit", "serve", "--mesh", str(root)),
                    *("--port", str(port), *(flags or [])),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(f"http://127.0.0.1:{port}", process, root, tokens, log)
        started.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {log.read_text()}")

    yield start
    for server in started:
        server.stop()


def assert_error_shape(response: httpx.Response) -> dict[str, Any]:
    """The one error shape: {"error": {status, code, message, hint}}, status repeated."""
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    error = response.json()["error"]
    assert set(error) >= {"status", "code", "message", "hint"}, error
    assert error["status"] == response.status_code
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return dict(error)
