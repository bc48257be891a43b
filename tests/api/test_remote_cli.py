"""A consumer without the mesh's files uses the CLI against a server, and each frontend is told
the next step in its own words."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from api.served import CONSUMER, CUSTOMERS, OWNER, StartServer, assert_error_shape


def meshkit(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    if token is not None:
        env["MESHKIT_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "meshkit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd="/",  # no mesh here: everything goes through the server
    )


def test_access_request_against_a_server(start_server: StartServer) -> None:
    server = start_server()
    purpose = ("--purpose", "Regional sales dashboard for Europe", "--until", "2099-12-31")
    requested = meshkit(
        "access",
        "request",
        CUSTOMERS,
        *purpose,
        "--server",
        server.url,
        "--json",
        token=server.tokens[CONSUMER],
    )
    assert requested.returncode == 0, requested.stderr
    (record,) = json.loads(requested.stdout)
    assert record["consumer"] == CONSUMER
    assert record["product_id"] == CUSTOMERS
    assert record["status"] == "pending"  # every column, PII included: the owners decide
    # the owner sees it waiting, over the API
    pending = httpx.get(f"{server.url}/access/requests", headers=server.headers(OWNER))
    assert record["id"] in {r["id"] for r in pending.json()["items"]}

    no_token = meshkit("access", "request", CUSTOMERS, *purpose, "--server", server.url)
    assert no_token.returncode == 2
    assert "--token" in no_token.stderr
    with_as = meshkit(
        "access",
        "request",
        CUSTOMERS,
        *purpose,
        "--as",
        CONSUMER,
        "--server",
        server.url,
        token=server.tokens[CONSUMER],
    )
    assert with_as.returncode == 2
    assert "leave out --as" in with_as.stderr
    hidden = meshkit(
        "access",
        "request",
        "customer.nope",
        *purpose,
        "--server",
        server.url,
        token=server.tokens[CONSUMER],
    )
    assert hidden.returncode == 9
    assert "no such product" in hidden.stderr
    assert "Traceback" not in hidden.stderr


def test_each_frontend_gets_its_own_hint(start_server: StartServer) -> None:
    server = start_server()
    answer = httpx.post(
        f"{server.url}/query",
        json={"sql": f"select count(*) from {CUSTOMERS}"},
        headers=server.headers(CONSUMER),
    )
    assert answer.status_code == 403
    error = assert_error_shape(answer)
    assert error["hint"] == f"request access: POST /access/requests with product {CUSTOMERS}"
    # the same refusal reached through the CLI names the command to run
    from meshkit.access.identity import resolve
    from meshkit.errors import AccessDenied
    from meshkit.workspace import Workspace

    with Workspace(server.root) as ws, pytest.raises(AccessDenied) as info:
        ws.access.query(resolve(ws.mesh, CONSUMER), f"select count(*) from {CUSTOMERS}")
    assert (info.value.hint or "").startswith(f"ask its owners: meshkit access request {CUSTOMERS}")
    assert info.value.hint_for("api") == error["hint"]
