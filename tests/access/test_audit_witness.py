"""The head file: the latest signed head kept outside the catalog, and verify against it.

Tampering is done as in test_audit.py: raw SQL against the catalog's tables, as an intruder
with database access would, never through meshkit. The concurrency tests run real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from access.test_audit import EVERY, SIZE, assert_bad, fill, hash_of
from meshkit.access import audit, witness
from meshkit.access.audit import AuditLog, Ed25519Signer, load_or_create_key
from meshkit.catalog import Catalog
from meshkit.catalog.audit import head_statement
from meshkit.errors import MeshkitError

from conftest import copy_mesh, run_cli


@pytest.fixture
def head_file(tmp_path: Path) -> Path:
    return tmp_path / "witness" / "audit-head.json"


@pytest.fixture
def log(catalog: Catalog, key: Ed25519PrivateKey, head_file: Path) -> AuditLog:
    return AuditLog(catalog, key, checkpoint_every=EVERY, head_file=head_file)


def empty(sql: Callable[..., None]) -> None:
    """What an intruder does to leave no trace: every entry, checkpoint and the head."""
    sql("DELETE FROM audit_log")
    sql("DELETE FROM audit_checkpoints")
    sql("DELETE FROM audit_head")


def rewrite_file(path: Path, **changes: object) -> None:
    fields = json.loads(path.read_text())
    path.write_text(json.dumps({**fields, **changes}))


# -- writing -----------------------------------------------------------------------------------


def test_each_append_leaves_the_signed_head_in_the_file(
    log: AuditLog, catalog: Catalog, head_file: Path
) -> None:
    fill(log)
    fields = json.loads(head_file.read_text())
    assert fields["kind"] == "meshkit.audit.head"
    assert (fields["seq"], fields["hash"]) == (SIZE, hash_of(catalog, SIZE))
    head = catalog.audit.head()
    assert head is not None
    assert (fields["signature"], fields["key_id"]) == (head.signature, head.key_id)
    # anyone with the public key can check it, by the documented formats alone
    raw = log.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert fields["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    statement = {k: fields[k] for k in ("kind", "seq", "hash", "key_id")}
    log.public_key.verify(
        bytes.fromhex(fields["signature"]),
        json.dumps(statement, sort_keys=True, separators=(",", ":")).encode(),
    )
    log.record("ana", "query")
    assert json.loads(head_file.read_text())["seq"] == SIZE + 1
    # written by rename: no temporary left behind
    assert sorted(p.name for p in head_file.parent.iterdir()) == [
        "audit-head.json",
        "audit-head.json.lock",
    ]
    result = log.verify()
    assert result == audit.Verification(
        True, SIZE + 1, 4, head_file=witness.shown(head_file), witnessed=SIZE + 1
    )


def test_a_head_file_that_cannot_be_written_is_a_clear_error(
    catalog: Catalog, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file where the head file's folder should be")
    log = AuditLog(catalog, key, head_file=tmp_path / "blocker" / "audit-head.json")
    with pytest.raises(MeshkitError, match="cannot write the audit head file") as caught:
        log.record("ana", "query")
    assert caught.value.hint is not None
    assert "settings.audit.head_file" in caught.value.hint


# -- verify against it -------------------------------------------------------------------------


def test_an_emptied_log_is_tampered_when_the_head_file_exists(
    log: AuditLog, sql: Callable[..., None], head_file: Path
) -> None:
    fill(log)
    empty(sql)
    assert audit.verify_log(log.catalog, log.public_key) == audit.Verification(True, 0, 0)
    result = log.verify()
    assert_bad(result, 1, "the log ends at entry 0", f"witnessed entry {SIZE}", "head file")
    assert result.witnessed == SIZE


def test_new_appends_to_an_emptied_log_do_not_wipe_the_evidence(
    log: AuditLog, sql: Callable[..., None], head_file: Path
) -> None:
    """meshkit starts a new chain on an emptied catalog; the head file keeps the old head,
    however long the new log grows."""
    fill(log)
    empty(sql)
    fill(log, SIZE + 10)
    assert json.loads(head_file.read_text())["seq"] == SIZE
    assert_bad(log.verify(), 1, f"entry {SIZE} does not match the head file", "rewritten")


def test_a_log_truncated_below_the_witnessed_seq_is_tampered(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None], key: Ed25519PrivateKey
) -> None:
    """A rollback: the tail, its checkpoints and a head re-signed with the real key at 30, as a
    backup of the catalog taken then would hold. Everything left is signed: only the head file
    shows what is missing."""
    fill(log)
    sql("DELETE FROM audit_log WHERE seq > 30")
    sql("DELETE FROM audit_checkpoints WHERE seq > 30")
    signer = Ed25519Signer(key)
    digest = hash_of(catalog, 30)
    signature = signer.sign(head_statement(seq=30, hash=digest, key_id=signer.key_id))
    sql("UPDATE audit_head SET seq = 30, hash = :h, signature = :s", h=digest, s=signature)
    assert audit.verify_log(catalog, key.public_key(), checkpoint_every=EVERY).ok
    assert_bad(log.verify(), 31, "the log ends at entry 30", f"witnessed entry {SIZE}")


def test_a_sqlite_catalog_restored_from_a_backup_is_tampered(
    tmp_path: Path, key: Ed25519PrivateKey, head_file: Path
) -> None:
    db = tmp_path / "catalog.db"
    with Catalog(f"sqlite:///{db}") as catalog:
        log = AuditLog(catalog, key, checkpoint_every=EVERY, head_file=head_file)
        fill(log, 20)
    shutil.copy(db, tmp_path / "backup.db")
    with Catalog(f"sqlite:///{db}") as catalog:
        fill(AuditLog(catalog, key, checkpoint_every=EVERY, head_file=head_file), 5)
    shutil.copy(tmp_path / "backup.db", db)
    with Catalog(f"sqlite:///{db}") as catalog:
        log = AuditLog(catalog, key, checkpoint_every=EVERY, head_file=head_file)
        assert_bad(log.verify(), 21, "the log ends at entry 20", "witnessed entry 25")


def test_a_log_rebuilt_with_the_key_is_tampered(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None], key: Ed25519PrivateKey
) -> None:
    """An intruder with the key empties the log and writes a new one, longer than the old,
    through meshkit but without the head file: it verifies on its own, not against the file."""
    fill(log)
    empty(sql)
    fill(AuditLog(catalog, key, checkpoint_every=EVERY), SIZE + 5)
    assert audit.verify_log(catalog, key.public_key(), checkpoint_every=EVERY).ok
    assert_bad(log.verify(), 1, f"entry {SIZE} does not match the head file")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"signature": "ab" * 64}, "has a bad signature"),
        ({"seq": SIZE + 5}, "has a bad signature"),
        ({"hash": "cd" * 32}, "has a bad signature"),
        ({"key_id": "0123456789abcdef"}, "names key '0123456789abcdef'"),
    ],
    ids=["signature", "seq", "hash", "key_id"],
)
def test_a_tampered_head_file_is_reported(
    log: AuditLog, head_file: Path, change: dict[str, object], problem: str
) -> None:
    fill(log)
    rewrite_file(head_file, **change)
    result = log.verify()
    assert not result.ok
    assert result.problem is not None
    assert problem in result.problem
    assert "head file" in result.problem


def test_a_head_file_signed_with_another_key_is_reported(log: AuditLog, head_file: Path) -> None:
    fill(log)
    theirs = Ed25519Signer(Ed25519PrivateKey.generate())
    statement = head_statement(seq=SIZE, hash="ef" * 32, key_id=theirs.key_id)
    rewrite_file(
        head_file,
        seq=SIZE,
        hash="ef" * 32,
        key_id=theirs.key_id,
        signature=theirs.sign(statement),
    )
    result = log.verify()
    assert not result.ok
    assert result.problem is not None
    assert f"names key {theirs.key_id!r}" in result.problem


@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        '{"kind": "meshkit.audit.checkpoint", "seq": 1}',
        '{"kind": "meshkit.audit.head"}',
    ],
    ids=["empty", "garbage", "list", "checkpoint", "no-fields"],
)
def test_a_head_file_that_holds_no_head_is_reported_then_replaced(
    log: AuditLog, head_file: Path, content: str
) -> None:
    fill(log)
    head_file.write_text(content)
    result = log.verify()
    assert not result.ok
    assert result.problem is not None
    assert "is not a signed audit head" in result.problem
    log.record("ana", "query")  # not evidence of anything in the log: the next append heals it
    assert log.verify().ok
    assert json.loads(head_file.read_text())["seq"] == SIZE + 1


def test_without_a_head_file_verify_says_it_had_no_witness(log: AuditLog, head_file: Path) -> None:
    fill(log)
    head_file.unlink()
    result = log.verify()
    assert result == audit.Verification(
        True, SIZE, 4, head_file=witness.shown(head_file), witnessed=None
    )


def test_a_copy_shipped_earlier_still_vouches_for_what_it_covers(
    log: AuditLog, sql: Callable[..., None], head_file: Path, tmp_path: Path
) -> None:
    fill(log, 20)
    shipped = tmp_path / "offsite-head.json"
    shutil.copy(head_file, shipped)
    fill(log, 25)
    result = log.verify(head_file=shipped)
    assert result.ok
    assert result.witnessed == 20
    # the local file and its log deleted together: the shipped copy still shows it
    empty(sql)
    head_file.unlink()
    assert log.verify().ok  # nothing left to compare with locally
    assert_bad(log.verify(head_file=shipped), 1, "the log ends at entry 0", "witnessed entry 20")


# -- several processes -------------------------------------------------------------------------

APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from meshkit.access.audit import AuditLog, load_or_create_key
    from meshkit.catalog import Catalog

    url, key_file, head_file, name, count = sys.argv[1:]
    with Catalog(url) as catalog:
        log = AuditLog(
            catalog, load_or_create_key(Path(key_file)), checkpoint_every=10,
            head_file=Path(head_file),
        )
        for i in range(int(count)):
            log.record(name, "query", "sales.orders", i=i)
    """
)


def start_appenders(
    url: str, key_file: Path, head_file: Path, count: int, names: tuple[str, ...]
) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, url, str(key_file), str(head_file), name, str(count)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for name in names
    ]


def test_appends_from_two_processes_keep_the_head_file_moving_forward(
    catalog_url: str, tmp_path: Path, head_file: Path
) -> None:
    Catalog(catalog_url).close()  # migrated first, so the processes race on appends only
    key_file = tmp_path / "audit.pem"
    key = load_or_create_key(key_file)
    count = 150
    writers = start_appenders(catalog_url, key_file, head_file, count, ("ana", "raj"))
    seen: list[int] = []
    while any(w.poll() is None for w in writers):
        try:
            data = head_file.read_bytes()
        except FileNotFoundError:
            continue
        head = json.loads(data)  # never half a file: it is replaced by rename
        seen.append(head["seq"])
    for writer in writers:
        _, err = writer.communicate()
        assert writer.returncode == 0, err.decode()
    seen.append(json.loads(head_file.read_text())["seq"])
    assert len(seen) > 2
    assert seen == sorted(seen), "the head file moved backwards"
    assert seen[-1] == 2 * count
    with Catalog(catalog_url) as catalog:
        log = AuditLog(catalog, key, checkpoint_every=10, head_file=head_file)
        result = log.verify()
    assert result.ok, result.problem
    assert (result.entries, result.witnessed) == (2 * count, 2 * count)


def test_verify_while_another_process_appends_finds_nothing_wrong(
    catalog_url: str, tmp_path: Path, head_file: Path
) -> None:
    """The head file may move on while verify reads the log: it is read first, so what it
    names is always in the log verify reads."""
    Catalog(catalog_url).close()
    key_file = tmp_path / "audit.pem"
    key = load_or_create_key(key_file)
    (writer,) = start_appenders(catalog_url, key_file, head_file, 300, ("ana",))
    results = []
    with Catalog(catalog_url) as catalog:
        log = AuditLog(catalog, key, checkpoint_every=10, head_file=head_file)
        while writer.poll() is None:
            results.append(log.verify())
        _, err = writer.communicate()
        assert writer.returncode == 0, err.decode()
        results.append(log.verify())
    assert all(r.ok for r in results), [r.problem for r in results if not r.ok]
    assert any(r.witnessed is not None for r in results)
    assert results[-1].witnessed == 300


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def mesh(built_example: Path, tmp_path: Path) -> Path:
    return copy_mesh(built_example, tmp_path / "mesh")


def catalog_sql(mesh: Path, *statements: str) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{mesh / '.meshkit' / 'catalog.db'}")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sqlalchemy.text(statement))
    engine.dispose()


def meshkit(mesh: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process, from the mesh root."""
    return subprocess.run(
        [sys.executable, "-m", "meshkit", *args],
        cwd=mesh,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"},
    )


def test_the_cli_reports_an_emptied_log_as_tampered(mesh: Path) -> None:
    done = meshkit(mesh, "query", "select 1 as x")  # an append: the head file is written
    assert done.returncode == 0, done.stderr
    witnessed = json.loads((mesh / ".meshkit" / "audit-head.json").read_text())["seq"]
    done = meshkit(mesh, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert "audit log intact" in done.stdout
    assert f"matches the head file .meshkit/audit-head.json (entry {witnessed})" in done.stdout
    catalog_sql(
        mesh, "DELETE FROM audit_log", "DELETE FROM audit_checkpoints", "DELETE FROM audit_head"
    )
    done = meshkit(mesh, "audit", "verify")
    assert done.returncode == 1
    assert "audit log tampered" in done.stderr
    assert (
        f"the log ends at entry 0 but the head file (.meshkit/audit-head.json) witnessed "
        f"entry {witnessed}" in done.stderr
    )
    done = meshkit(mesh, "audit", "verify", "--json")
    assert done.returncode == 1
    answer = json.loads(done.stdout)
    assert (answer["ok"], answer["first_bad"], answer["witnessed"]) == (False, 1, witnessed)
    assert answer["head_file"] == ".meshkit/audit-head.json"


def test_the_cli_checks_a_shipped_copy_and_says_when_it_had_no_witness(
    mesh: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(mesh)
    code, _, err = run_cli(["query", "select 1 as x", "--mesh", root], capsys)
    assert code == 0, err
    local = mesh / ".meshkit" / "audit-head.json"
    shipped = tmp_path / "offsite" / "head.json"
    shipped.parent.mkdir()
    shutil.copy(local, shipped)
    witnessed = json.loads(shipped.read_text())["seq"]
    local.unlink()
    code, out, err = run_cli(["audit", "verify", "--mesh", root], capsys)
    assert code == 0, err
    assert "checked without a witness: there is no head file" in out
    code, out, err = run_cli(["audit", "verify", "--witness", str(shipped), "--mesh", root], capsys)
    assert code == 0, err
    assert f"(entry {witnessed})" in out
    # rolled back below the shipped head: tail and checkpoints gone, the head re-signed
    cut = witnessed - 2
    with Catalog(f"sqlite:///{mesh / '.meshkit' / 'catalog.db'}") as catalog:
        digest = hash_of(catalog, cut)
    signer = Ed25519Signer(load_or_create_key(mesh / ".meshkit" / "audit-ed25519.pem"))
    signature = signer.sign(head_statement(seq=cut, hash=digest, key_id=signer.key_id))
    catalog_sql(
        mesh,
        f"DELETE FROM audit_log WHERE seq > {cut}",
        f"DELETE FROM audit_checkpoints WHERE seq > {cut}",
        f"UPDATE audit_head SET seq = {cut}, hash = '{digest}', signature = '{signature}'",
    )
    code, out, err = run_cli(["audit", "verify", "--mesh", root], capsys)
    assert code == 0, err  # nothing in the catalog, and no local head file, shows it
    code, _, err = run_cli(["audit", "verify", "--witness", str(shipped), "--mesh", root], capsys)
    assert code == 1
    assert f"the log ends at entry {cut} but the head file" in err
    assert f"witnessed entry {witnessed}" in err
    rewrite_file(shipped, signature="00" * 64)
    code, _, err = run_cli(["audit", "verify", "--witness", str(shipped), "--mesh", root], capsys)
    assert code == 1
    assert "has a bad signature" in err
    code, _, err = run_cli(
        ["audit", "verify", "--witness", str(tmp_path / "nope.json"), "--mesh", root], capsys
    )
    assert code == 2
    assert "--witness" in err


def test_the_head_file_setting_moves_the_file(
    mesh: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (mesh / "mesh.yaml").read_text()
    assert "  audit: {enabled: true}\n" in text
    elsewhere = mesh / "witness" / "head.json"
    (mesh / "mesh.yaml").write_text(
        text.replace(
            "audit: {enabled: true}", "audit: {enabled: true, head_file: witness/head.json}"
        )
    )
    default = mesh / ".meshkit" / "audit-head.json"
    before = default.read_text()  # written by the builds of the example
    code, _, err = run_cli(["query", "select 1 as x", "--mesh", str(mesh)], capsys)
    assert code == 0, err
    moved = json.loads(elsewhere.read_text())
    assert moved["seq"] == json.loads(before)["seq"] + 1
    assert default.read_text() == before
    code, out, err = run_cli(["audit", "verify", "--mesh", str(mesh)], capsys)
    assert code == 0, err
    assert "witness/head.json" in out


def test_get_audit_verify_compares_with_the_head_file(mesh: Path) -> None:
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from meshkit.access.identity import LOCAL
    from meshkit.api import create_app
    from meshkit.workspace import Workspace

    with Workspace(mesh) as ws:
        client = TestClient(create_app(ws), raise_server_exceptions=False)
        _, secret = ws.access.create_token(
            "platform-team@example.com", ttl=timedelta(hours=1), by=LOCAL
        )
        headers = {"Authorization": f"Bearer {secret}"}
        answer = client.get("/audit/verify", headers=headers).json()
        assert answer["ok"] is True
        witnessed = json.loads((mesh / ".meshkit" / "audit-head.json").read_text())["seq"]
        catalog_sql(mesh, "DELETE FROM audit_log", "DELETE FROM audit_checkpoints")
        catalog_sql(mesh, "DELETE FROM audit_head")
        answer = client.get("/audit/verify", headers=headers).json()
    assert answer["ok"] is False
    assert answer["first_bad"] == 1
    assert f"witnessed entry {witnessed}" in answer["problem"]
