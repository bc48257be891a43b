"""The audit log against a real catalog (SQLite, and PostgreSQL when configured).

Tampering is done the way an intruder with database access would: raw SQL against the tables,
never through meshkit. Each case asserts the entry verification names first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import stat
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import create_engine, text

from meshkit.access import audit
from meshkit.access.audit import (
    AuditDraft,
    AuditLog,
    Ed25519Signer,
    load_or_create_key,
    public_key_id,
    verify_export,
    verify_log,
)
from meshkit.catalog import Catalog
from meshkit.catalog.audit import GENESIS_HASH, entry_hash, head_statement
from meshkit.errors import CatalogError, MeshkitError

EVERY = 10  # checkpoint interval of the logs under test
SIZE = 45  # entries in a filled log: checkpoints at 10..40, head at 45


@pytest.fixture
def log(catalog: Catalog, key: Ed25519PrivateKey) -> AuditLog:
    return AuditLog(catalog, key, checkpoint_every=EVERY)


def fill(log: AuditLog, count: int = SIZE) -> None:
    actions = ["query", "grant.approve", "token.create", "build", "waiver"]
    log.record_many(
        AuditDraft(f"user{i % 3}", actions[i % 5], f"sales.p{i}", {"n": i, "rows": [i, i * 2]})
        for i in range(1, count + 1)
    )


def hash_of(catalog: Catalog, seq: int) -> str:
    (entry,) = catalog.audit.entries(seq - 1, limit=1)
    return entry.hash


def fake_entry(seq: int, prev_hash: str, *, actor: str = "mallory") -> dict[str, Any]:
    """A well-formed entry with a correct hash: anyone can compute SHA-256."""
    fields: dict[str, Any] = {
        "seq": seq,
        "at": datetime.now(UTC),
        "actor": actor,
        "action": "grant.approve",
        "subject": "sales.orders",
        "detail": {"why": "nobody will notice"},
        "prev_hash": prev_hash,
    }
    return {**fields, "hash": entry_hash(**fields)}


INSERT = (
    "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) "
    "VALUES (:seq, :at, :actor, :action, :subject, :detail, :prev_hash, :hash)"
)


def shift_up(sql: Callable[..., None], start: int) -> None:
    """Renumber entries from ``start`` on by +1 (two steps: seq is unique at every row)."""
    sql("UPDATE audit_log SET seq = -seq WHERE seq >= :s", s=start)
    sql("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0")


def assert_bad(result: audit.Verification, first_bad: int, *words: str) -> None:
    assert not result.ok
    assert result.problem is not None
    assert (result.first_bad, *(w in result.problem for w in words)) == (
        first_bad,
        *(True for _ in words),
    ), result.problem


# -- appending and reading ---------------------------------------------------------------------


def test_round_trip(log: AuditLog, catalog: Catalog) -> None:
    first = log.record("ana", "grant.approve", "sales.orders", grant=7, note="ünïcode")
    assert (first.seq, first.prev_hash, first.detail) == (
        1,
        GENESIS_HASH,
        {"grant": 7, "note": "ünïcode"},
    )
    more = log.record_many(
        [AuditDraft("raj", "query"), AuditDraft("raj", "build", "x", {"a": [1]})]
    )
    assert [e.seq for e in more] == [2, 3]
    assert more[0].prev_hash == first.hash
    assert catalog.audit.entries() == [first, *more]
    assert catalog.audit.entries(after_seq=1, limit=1) == [more[0]]
    assert all(e.content_hash() == e.hash for e in catalog.audit.entries())
    head = catalog.audit.head()
    assert head is not None
    assert (head.seq, head.hash, head.key_id) == (3, more[1].hash, public_key_id(log.public_key))
    assert log.verify() == audit.Verification(True, 3, 0)


def test_an_empty_log_verifies(log: AuditLog) -> None:
    assert log.verify() == audit.Verification(True, 0, 0)
    assert log.record_many([]) == []


def test_timestamps_follow_seqs_and_are_utc(log: AuditLog) -> None:
    entries = [log.record("ana", "query") for _ in range(5)]
    times = [e.at for e in entries]
    assert times == sorted(times)
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_a_checkpoint_every_n_entries(log: AuditLog, catalog: Catalog) -> None:
    for _ in range(3):
        log.record("ana", "query")
    fill(log, 22)  # one transaction crossing two multiples of 10
    checkpoints = catalog.audit.checkpoints()
    assert [c.seq for c in checkpoints] == [10, 20]
    assert [c.hash for c in checkpoints] == [hash_of(catalog, 10), hash_of(catalog, 20)]
    assert {c.key_id for c in checkpoints} == {public_key_id(log.public_key)}
    assert [c.seq for c in catalog.audit.checkpoints(after_seq=10, up_to=20)] == [20]
    assert log.verify() == audit.Verification(True, 25, 2)


def test_concurrent_appenders_get_every_seq_once(catalog_url: str, key: Ed25519PrivateKey) -> None:
    """Two writers (own catalogs, as two processes would have) append 200 entries each."""
    Catalog(catalog_url).close()  # migrate first, so the writers race on appends only
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with Catalog(catalog_url) as catalog:
                own = AuditLog(catalog, key, checkpoint_every=EVERY)
                for i in range(200):
                    own.record(name, "query", "sales.orders", i=i)
        except BaseException as exc:  # surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("ana", "raj")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Catalog(catalog_url) as catalog:
        entries = catalog.audit.entries()
        assert [e.seq for e in entries] == list(range(1, 401))
        assert sorted(e.actor for e in entries).count("ana") == 200
        assert verify_log(catalog, key.public_key(), checkpoint_every=EVERY) == (
            audit.Verification(True, 400, 40)
        )


def test_appending_to_a_log_without_its_head_is_refused(
    log: AuditLog, sql: Callable[..., None]
) -> None:
    fill(log, 3)
    sql("DELETE FROM audit_head")
    with pytest.raises(CatalogError, match="no signed head") as caught:
        log.record("ana", "query")
    assert caught.value.hint is not None


# -- tampering: the chain ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 17", {}),
        ("UPDATE audit_log SET action = 'query' WHERE seq = 17", {}),
        ("UPDATE audit_log SET subject = '' WHERE seq = 17", {}),
        ("UPDATE audit_log SET detail = :detail WHERE seq = 17", {"detail": {"n": 999}}),
        (
            "UPDATE audit_log SET at = :at WHERE seq = 17",
            {"at": datetime(2020, 1, 1, tzinfo=UTC)},
        ),
        ("UPDATE audit_log SET hash = :h WHERE seq = 17", {"h": "ab" * 32}),
    ],
    ids=["actor", "action", "subject", "detail", "at", "hash"],
)
def test_an_edited_entry_is_named(
    log: AuditLog, sql: Callable[..., None], statement: str, params: dict[str, Any]
) -> None:
    fill(log)
    sql(statement, **params)
    assert_bad(log.verify(), 17, "entry 17 was edited")


def test_an_edited_prev_hash_breaks_the_chain_there(
    log: AuditLog, sql: Callable[..., None]
) -> None:
    fill(log)
    sql("UPDATE audit_log SET prev_hash = :h WHERE seq = 17", h="00" * 32)
    assert_bad(log.verify(), 17, "entry 17 does not follow entry 16")


@pytest.mark.parametrize("seq", [1, 17, 30])
def test_a_deleted_entry_is_named(log: AuditLog, sql: Callable[..., None], seq: int) -> None:
    fill(log)
    sql("DELETE FROM audit_log WHERE seq = :s", s=seq)
    assert_bad(log.verify(), seq, f"entry {seq} is missing")


def test_deleted_entries_are_named_as_a_range(log: AuditLog, sql: Callable[..., None]) -> None:
    fill(log)
    sql("DELETE FROM audit_log WHERE seq BETWEEN 12 AND 14")
    assert_bad(log.verify(), 12, "entries 12 to 14 are missing", "from 11 to 15")


def test_a_deleted_and_renumbered_entry_breaks_the_chain(
    log: AuditLog, sql: Callable[..., None]
) -> None:
    fill(log)
    sql("DELETE FROM audit_log WHERE seq = 17")
    sql("UPDATE audit_log SET seq = -seq WHERE seq > 17")
    sql("UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0")
    assert_bad(log.verify(), 17, "entry 17 does not follow entry 16")


def test_an_inserted_entry_with_a_correct_hash_is_named(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None]
) -> None:
    fill(log)
    prev = hash_of(catalog, 16)
    shift_up(sql, 17)
    sql(INSERT, **fake_entry(17, prev))
    assert_bad(log.verify(), 17, "entry 17 was inserted", "entry 18 names entry 16")


def test_an_inserted_entry_with_a_made_up_hash_is_named(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None]
) -> None:
    fill(log)
    prev = hash_of(catalog, 16)
    shift_up(sql, 17)
    sql(INSERT, **{**fake_entry(17, prev), "hash": "cd" * 32})
    assert_bad(log.verify(), 17, "entry 17 was inserted", "entry 18 names entry 16")


def test_an_inserted_entry_with_a_made_up_prev_hash_is_named(
    log: AuditLog, sql: Callable[..., None]
) -> None:
    fill(log)
    shift_up(sql, 17)
    sql(INSERT, **fake_entry(17, "ef" * 32))
    assert_bad(log.verify(), 17, "entry 17 does not follow entry 16", "inserted or reordered")


def test_an_entry_inserted_across_a_page_boundary_is_named(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification reads pages; the look-ahead that tells an insertion must cross them."""
    monkeypatch.setattr(audit, "PAGE_SIZE", 7)
    fill(log)
    prev = hash_of(catalog, 13)
    shift_up(sql, 14)
    sql(INSERT, **{**fake_entry(14, prev), "hash": "cd" * 32})
    assert_bad(log.verify(), 14, "entry 14 was inserted")


@pytest.mark.parametrize(("a", "b"), [(17, 18), (13, 17)])
def test_reordered_entries_are_named(
    log: AuditLog, sql: Callable[..., None], a: int, b: int
) -> None:
    fill(log)
    sql("UPDATE audit_log SET seq = -1 WHERE seq = :a", a=a)
    sql("UPDATE audit_log SET seq = :a WHERE seq = :b", a=a, b=b)
    sql("UPDATE audit_log SET seq = :b WHERE seq = -1", b=b)
    assert_bad(log.verify(), a, f"entry {a} does not follow", "reordered")


def test_entries_with_swapped_contents_are_named(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None]
) -> None:
    """The rows keep their seqs but trade everything else, hashes included."""
    fill(log)
    a, b = catalog.audit.entries(after_seq=16, limit=2)
    for seq, other in ((17, b), (18, a)):
        sql(
            "UPDATE audit_log SET at = :at, actor = :actor, action = :action, "
            "subject = :subject, detail = :detail, prev_hash = :prev_hash, hash = :hash "
            "WHERE seq = :seq",
            **{**dataclasses.asdict(other), "seq": seq},
        )
    assert_bad(log.verify(), 17, "entry 17 does not follow entry 16", "reordered")


def test_a_rewritten_stretch_with_fresh_hashes_is_caught_by_the_next_checkpoint(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None]
) -> None:
    fill(log)
    prev = hash_of(catalog, 22)
    for entry in catalog.audit.entries(after_seq=22):
        fields = {**entry.to_dict(), "at": entry.at, "prev_hash": prev}
        if entry.seq == 23:
            fields["actor"] = "mallory"
        fields.pop("hash")
        digest = entry_hash(**fields)
        sql(
            "UPDATE audit_log SET actor = :actor, prev_hash = :p, hash = :h WHERE seq = :s",
            actor=fields["actor"],
            p=prev,
            h=digest,
            s=entry.seq,
        )
        prev = digest
    assert_bad(log.verify(), 21, "entries 21 to 30 were rewritten", "checkpoint at 30")


def test_an_undecodable_value_is_named(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """SQLite stores any text in a JSON or DATETIME column; such a row was edited by hand."""
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = create_engine(url)
    with Catalog(url) as catalog:
        log = AuditLog(catalog, key, checkpoint_every=EVERY)
        fill(log)
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET detail = 'not json' WHERE seq = 17"))
        assert_bad(log.verify(), 17, "entry 17 was edited", "detail")
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET detail = '{}', at = 'noon' WHERE seq = 12"))
        assert_bad(log.verify(), 12, "entry 12 was edited", "at")
    engine.dispose()


# -- tampering: checkpoints, head and tail -----------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("DELETE FROM audit_checkpoints WHERE seq = 20", "checkpoint at 20 is missing"),
        (
            "UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints "
            "WHERE seq = 10) WHERE seq = 20",
            "checkpoint at 20 has a bad signature",
        ),
        ("UPDATE audit_checkpoints SET hash = 'ab' WHERE seq = 20", "has a bad signature"),
        ("UPDATE audit_checkpoints SET signature = 'zz' WHERE seq = 20", "has a bad signature"),
        ("UPDATE audit_checkpoints SET key_id = 'k' WHERE seq = 20", "names key 'k'"),
    ],
    ids=["deleted", "signature", "hash", "garbage", "key_id"],
)
def test_a_tampered_checkpoint_is_named(
    log: AuditLog, sql: Callable[..., None], statement: str, problem: str
) -> None:
    fill(log)
    sql(statement)
    assert_bad(log.verify(), 20, problem)


@pytest.mark.parametrize("also_checkpoints", [False, True])
def test_a_truncated_tail_is_caught(
    log: AuditLog, sql: Callable[..., None], also_checkpoints: bool
) -> None:
    fill(log)
    sql("DELETE FROM audit_log WHERE seq > 38")
    if also_checkpoints:
        sql("DELETE FROM audit_checkpoints WHERE seq > 38")
    assert_bad(log.verify(), 39, "ends at entry 38", "the signed head says 45", "truncated")


def test_a_truncated_tail_is_caught_by_a_checkpoint_beyond_it(
    log: AuditLog, sql: Callable[..., None]
) -> None:
    fill(log)
    sql("DELETE FROM audit_log WHERE seq > 25")
    sql("DELETE FROM audit_head")
    assert_bad(log.verify(), 26, "ends at entry 25", "checkpoint at 30", "truncated")


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("DELETE FROM audit_head", "the signed head is missing"),
        ("UPDATE audit_head SET signature = :s", "the signed head has a bad signature"),
        ("UPDATE audit_head SET seq = 44", "the signed head has a bad signature"),
    ],
    ids=["deleted", "signature", "seq"],
)
def test_a_tampered_head_is_caught(
    log: AuditLog, sql: Callable[..., None], statement: str, problem: str
) -> None:
    fill(log)
    sql(statement, s="ab" * 64)
    # Entries up to the last checkpoint (40) are still vouched for by its signature.
    assert_bad(log.verify(), 41, problem)


@pytest.mark.parametrize("claimed_key", ["ours", "theirs"])
def test_a_head_rewritten_without_the_key_is_caught(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None], claimed_key: str
) -> None:
    """Mallory cuts the tail and its checkpoints, then signs a new head with her own key."""
    fill(log)
    sql("DELETE FROM audit_log WHERE seq > 33")
    sql("DELETE FROM audit_checkpoints WHERE seq > 33")
    theirs = Ed25519Signer(Ed25519PrivateKey.generate())
    key_id = public_key_id(log.public_key) if claimed_key == "ours" else theirs.key_id
    new_hash = hash_of(catalog, 33)
    signature = theirs.sign(head_statement(seq=33, hash=new_hash, key_id=key_id))
    sql(
        "UPDATE audit_head SET seq = 33, hash = :h, signature = :s, key_id = :k",
        h=new_hash,
        s=signature,
        k=key_id,
    )
    problem = "bad signature" if claimed_key == "ours" else f"names key {key_id!r}"
    assert_bad(log.verify(), 31, "the signed head", problem)


def test_entries_appended_without_the_key_are_caught(
    log: AuditLog, catalog: Catalog, sql: Callable[..., None]
) -> None:
    fill(log)
    sql(INSERT, **fake_entry(46, hash_of(catalog, 45)))
    assert_bad(log.verify(), 46, "entry 46 came after the signed head (45)")


def test_verifying_with_another_key_fails_at_the_first_checkpoint(log: AuditLog) -> None:
    fill(log)
    other = Ed25519PrivateKey.generate().public_key()
    assert_bad(log.verify(other), 10, "checkpoint at 10 names key")


# -- export ------------------------------------------------------------------------------------


def reverify_by_hand(lines: list[str], public_key_raw: bytes) -> int:
    """What a party without meshkit does with an export: recompute, link, check signatures."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    public_key = Ed25519PublicKey.from_public_bytes(public_key_raw)
    key_id = hashlib.sha256(public_key_raw).hexdigest()[:16]
    prev = "0" * 64
    for line in lines:
        e = json.loads(line)
        body = {k: e[k] for k in ("seq", "at", "actor", "action", "subject", "detail")}
        digest = hashlib.sha256(bytes.fromhex(prev) + canonical({**body, "prev": prev})).hexdigest()
        assert (e["prev_hash"], e["hash"]) == (prev, digest), e["seq"]
        if "checkpoint" in e:
            c = e["checkpoint"]
            statement = {"kind": "meshkit.audit.checkpoint", "seq": e["seq"], "hash": digest}
            statement |= {"at": c["at"], "key_id": key_id}
            public_key.verify(bytes.fromhex(c["signature"]), canonical(statement))
        prev = digest
    head = json.loads(lines[-1])["head"]
    assert (head["seq"], head["hash"]) == (json.loads(lines[-1])["seq"], prev)
    statement = {"kind": "meshkit.audit.head", "seq": head["seq"], "hash": prev, "key_id": key_id}
    public_key.verify(bytes.fromhex(head["signature"]), canonical(statement))
    return len(lines)


def test_an_export_can_be_reverified_without_meshkit(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "PAGE_SIZE", 7)  # several pages
    fill(log)
    out = io.StringIO()
    assert log.export(out) == SIZE
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, SIZE + 1))
    raw = log.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert reverify_by_hand(lines, raw) == SIZE
    assert verify_export(lines, log.public_key, checkpoint_every=EVERY) == (
        audit.Verification(True, SIZE, 4)
    )


def test_a_tampered_export_is_caught(log: AuditLog) -> None:
    fill(log)
    out = io.StringIO()
    log.export(out)
    lines = out.getvalue().splitlines()
    edited = json.loads(lines[16]) | {"actor": "mallory"}
    lines[16] = json.dumps(edited)
    result = verify_export(lines, log.public_key, checkpoint_every=EVERY)
    assert_bad(result, 17, "entry 17 was edited")
    assert_bad(verify_export(lines[:30], log.public_key, checkpoint_every=EVERY), 17)
    assert_bad(verify_export([*lines[:3], "{"], log.public_key), 4, "line 4 is not an audit entry")


def test_a_partial_export_verifies_from_where_it_starts(log: AuditLog) -> None:
    fill(log)
    out = io.StringIO()
    assert log.export(out, after_seq=25) == SIZE - 25
    lines = out.getvalue().splitlines()
    assert json.loads(lines[0])["seq"] == 26
    assert verify_export(lines, log.public_key, after_seq=25, checkpoint_every=EVERY) == (
        audit.Verification(True, SIZE - 25, 2)
    )
    truncated = verify_export(lines[:-5], log.public_key, after_seq=25, checkpoint_every=EVERY)
    assert_bad(truncated, 41, "head")  # the head rides on the last line: cut off with it
    assert log.export(io.StringIO(), after_seq=SIZE) == 0


# -- the key -----------------------------------------------------------------------------------


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.pem"
    created = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key(path)
    raw = [k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) for k in (created, again)]
    assert raw[0] == raw[1]
    assert public_key_id(again.public_key()) == hashlib.sha256(raw[0]).hexdigest()[:16]
    assert [p.name for p in path.parent.iterdir()] == ["audit.pem"]  # no temporary left


def test_processes_creating_the_key_at_once_share_one(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    keys: list[bytes] = []

    def load() -> None:
        key = load_or_create_key(path)
        keys.append(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key at all\n", "corrupt or encrypted"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "corrupt"),
        (
            Ed25519PrivateKey.generate().private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret")
            ),
            "encrypted",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
            ),
            "not an Ed25519 key",
        ),
    ],
    ids=["garbage", "truncated", "encrypted", "ecdsa"],
)
def test_an_unusable_key_file_is_a_clear_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "audit.pem"
    path.write_bytes(content)
    with pytest.raises(MeshkitError, match=message) as caught:
        load_or_create_key(path)
    assert str(path) in caught.value.message
    assert caught.value.hint is not None
    assert "backup" in caught.value.hint
    assert path.read_bytes() == content  # never replaced behind the user's back


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.pem"
    path.mkdir()  # a directory where the key should be
    with pytest.raises(MeshkitError, match="cannot read the audit signing key") as caught:
        load_or_create_key(path)
    assert caught.value.hint is not None
