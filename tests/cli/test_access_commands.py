"""`meshkit token`, `meshkit access` and `meshkit audit` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import copy_mesh, run_cli

C = "customer.customers"
CONSUMER = "lena.schmidt@example.com"
OWNER = "maria.gonzalez@example.com"


@pytest.fixture
def mesh(built_example: Path, tmp_path: Path) -> str:
    return str(copy_mesh(built_example, tmp_path / "mesh"))


def test_tokens_are_shown_once_and_listed_without_secrets(
    mesh: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        ["token", "create", CONSUMER, "--expires", "2h", "--mesh", mesh], capsys
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("mk_")
    assert "shown this once" in err
    code, out, _ = run_cli(["token", "list", "--json", "--mesh", mesh], capsys)
    listed = json.loads(out)
    assert [t["principal"] for t in listed] == [CONSUMER]
    assert token not in out
    assert "secret_hash" not in out
    code, out, _ = run_cli(["token", "revoke", listed[0]["id"], "--mesh", mesh], capsys)
    assert code == 0
    assert "revoked" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["token", "create", "nobody@example.com"], 1, "unknown principal"),
        (["token", "create", CONSUMER, "--expires", "500d"], 1, "must expire within"),
        (["token", "create", CONSUMER, "--expires", "soon"], 2, "--expires"),
        (["token", "revoke", "nope"], 2, "no token 'nope'"),
        (
            ["access", "request", C, "--as", CONSUMER, "--purpose", "p", "--until", "2099-01-01"],
            1,
            "purpose",
        ),
        (
            [
                "access",
                "request",
                C,
                "--as",
                CONSUMER,
                "--purpose",
                "regional planning",
                "--until",
                "tomorrow",
            ],
            2,
            "--until",
        ),
        (
            [
                "access",
                "request",
                C,
                "--as",
                CONSUMER,
                "--purpose",
                "regional planning",
                "--until",
                "2001-01-01",
            ],
            1,
            "in the past",
        ),
        (
            [
                "access",
                "request",
                C,
                "--as",
                CONSUMER,
                "--purpose",
                "regional planning",
                "--until",
                "2099-01-01",
                "--columns",
                "ssn",
            ],
            1,
            "no column 'ssn'",
        ),
        (
            [
                "access",
                "request",
                "hr.salaries",
                "--as",
                CONSUMER,
                "--purpose",
                "regional planning",
                "--until",
                "2099-01-01",
            ],
            9,
            "no access",
        ),
        (["access", "pending", "--as", "mallory@example.com"], 9, "unknown principal"),
        (["access", "approve", "x", "--as", CONSUMER], 9, "that you may decide"),
        (["query", "select 1", "--server", "http://127.0.0.1:9"], 2, "needs a token"),
        (
            ["query", "select 1", "--server", "http://127.0.0.1:9", "--token", "mk_x_y"],
            1,
            "cannot reach",
        ),
    ],
)
def test_bad_access_input_is_a_message(
    mesh: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = run_cli([*args, "--mesh", mesh], capsys)
    assert got == code, out + err
    assert message in out + err


def test_request_approve_grants_revoke_then_audit(
    mesh: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        [
            "access",
            "request",
            C,
            "--as",
            CONSUMER,
            "--purpose",
            "regional sales planning",
            "--until",
            "2099-12-31",
            "--json",
            "--mesh",
            mesh,
        ],
        capsys,
    )
    assert code == 0, err
    request_id = json.loads(out)[0]["id"]
    code, out, _ = run_cli(["access", "pending", "--as", OWNER, "--json", "--mesh", mesh], capsys)
    assert request_id in [r["id"] for r in json.loads(out)]
    code, out, err = run_cli(
        ["access", "approve", request_id, "--as", CONSUMER, "--mesh", mesh], capsys
    )
    assert code == 9  # the consumer cannot approve its own request
    code, out, _ = run_cli(["access", "approve", request_id, "--as", OWNER, "--mesh", mesh], capsys)
    assert code == 0
    assert "approved" in out
    code, out, _ = run_cli(["access", "grants", "--as", CONSUMER, "--json", "--mesh", mesh], capsys)
    assert [g["id"] for g in json.loads(out)] == [request_id]
    code, out, _ = run_cli(["access", "revoke", request_id, "--as", OWNER, "--mesh", mesh], capsys)
    assert code == 0
    code, out, _ = run_cli(["access", "grants", "--as", CONSUMER, "--json", "--mesh", mesh], capsys)
    assert json.loads(out) == []

    code, out, _ = run_cli(["audit", "verify", "--mesh", mesh], capsys)
    assert code == 0
    assert "audit log intact" in out
    export = tmp_path / "audit.jsonl"
    code, _, err = run_cli(["audit", "export", "-o", str(export), "--mesh", mesh], capsys)
    assert code == 0
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert {"access.requested", "access.approved", "access.revoked", "build"} <= {
        e["action"] for e in lines
    }

    code, pem, _ = run_cli(["audit", "key", "--mesh", mesh], capsys)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "audit.pub").write_text(pem)
    code, out, _ = run_cli(
        ["audit", "verify", "--public-key", str(tmp_path / "audit.pub"), "--mesh", mesh], capsys
    )
    assert code == 0
    other = Ed25519PrivateKey.generate().public_key()
    (tmp_path / "other.pub").write_bytes(
        other.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    code, _, err = run_cli(
        ["audit", "verify", "--public-key", str(tmp_path / "other.pub"), "--mesh", mesh], capsys
    )
    assert code == 1  # a log re-signed with another key does not pass against the kept copy
    assert "not the verifying key" in err
    code, _, err = run_cli(
        ["audit", "verify", "--public-key", str(tmp_path / "nope.pub"), "--mesh", mesh], capsys
    )
    assert code == 2
    assert "--public-key" in err

    engine = sqlalchemy.create_engine(f"sqlite:///{Path(mesh) / '.meshkit' / 'catalog.db'}")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("update audit_log set actor = 'someone-else' where seq = 3"))
    engine.dispose()
    code, out, err = run_cli(["audit", "verify", "--mesh", mesh], capsys)
    assert code == 1
    assert "entry 3" in err
    code, out, _ = run_cli(["audit", "verify", "--json", "--mesh", mesh], capsys)
    assert json.loads(out)["first_bad"] == 3


def test_serve_refuses_invalid_specs_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mesh.yaml").write_text("kind: Mesh\n")
    code, out, err = run_cli(["serve", "--mesh", str(tmp_path), "--port", "8799"], capsys)
    assert code == 2
    assert "serving" not in out + err
    assert "apiVersion" in err
