"""The audit log's storage: entries chained by SHA-256, signed checkpoints, and a signed head.

Every entry's hash covers its content and the previous entry's hash, so editing, removing,
inserting or reordering an entry breaks the chain at that entry. The chain alone cannot show a
missing tail, or a tail rewritten with fresh hashes (anyone can compute SHA-256); signatures
can: every ``checkpoint_every``-th entry gets a signed checkpoint, and one row, the head, names
the latest entry under a signature. The head is rewritten in the same transaction as every
append, so a log shorter than its head was truncated.

Formats, so that a party without meshkit can re-verify an export (all JSON is canonical:
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8):

* entry hash: ``sha256(bytes.fromhex(prev_hash) + canonical({"seq", "at", "actor", "action",
  "subject", "detail", "prev"}))``, ``at`` in ISO 8601 UTC with microseconds, ``prev`` the
  previous entry's hash; the first entry's is ``GENESIS_HASH`` (64 zeros).
* checkpoint statement: ``canonical({"kind": "meshkit.audit.checkpoint", "seq", "hash", "at",
  "key_id"})``; head statement: ``canonical({"kind": "meshkit.audit.head", "seq", "hash",
  "key_id"})``. The signer signs those bytes; signatures are stored in hex.

Signing keys are not this module's business: ``AuditRepository.append`` takes any ``AuditSigner``
(``meshkit.access.audit`` provides the Ed25519 one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from meshkit.catalog.audit_models import AuditCheckpoint, AuditEntry, AuditHead
from meshkit.catalog.backend import Backend, dialect_insert
from meshkit.catalog.mapping import RecordMap
from meshkit.catalog.models import Base, utcnow
from meshkit.catalog.records import _Record, jsonable
from meshkit.errors import CatalogError

GENESIS_HASH: Final = "0" * 64
CHECKPOINT_KIND: Final = "meshkit.audit.checkpoint"
HEAD_KIND: Final = "meshkit.audit.head"
_HEAD_ID: Final = 1
# Built once: an append runs these on every call, and building a statement costs more than
# running it on SQLite. Core tables, not ORM entities, skip the ORM's bulk-insert machinery.
_TABLES: Final = Base.metadata.tables
_INSERT_ENTRIES: Final = insert(_TABLES["audit_log"])
_INSERT_CHECKPOINTS: Final = insert(_TABLES["audit_checkpoints"])
_LOCK_HEAD: Final = (
    select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID).with_for_update()
)
_SET_HEAD: Final = update(_TABLES["audit_head"]).where(_TABLES["audit_head"].c.id == _HEAD_ID)
# In the order of AuditEntryRecord's fields.
_ENTRY_COLUMNS: Final = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.subject,
    AuditEntry.detail,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


# -- the formats -------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The one byte string a JSON value hashes and signs as, whoever serialises it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def timestamp(at: datetime) -> str:
    """``at`` as hashed: ISO 8601 in UTC, always with microseconds (``isoformat`` drops zeros)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """The hash an entry with this content, following ``prev_hash``, must carry."""
    body = {
        "seq": seq,
        "at": timestamp(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
        "prev": prev_hash,
    }
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(body)).hexdigest()


def checkpoint_statement(*, seq: int, hash: str, at: datetime, key_id: str) -> bytes:
    """What a checkpoint's signature signs."""
    return canonical_json(
        {"kind": CHECKPOINT_KIND, "seq": seq, "hash": hash, "at": timestamp(at), "key_id": key_id}
    )


def head_statement(*, seq: int, hash: str, key_id: str) -> bytes:
    """What the head's signature signs. ``kind`` keeps it from passing for a checkpoint."""
    return canonical_json({"kind": HEAD_KIND, "seq": seq, "hash": hash, "key_id": key_id})


class AuditSigner(Protocol):
    """Signs checkpoint and head statements; ``key_id`` names the key in the rows it signs."""

    @property
    def key_id(self) -> str: ...

    def sign(self, message: bytes) -> str:
        """The signature of ``message``, as text (hex)."""
        ...


# -- records -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditDraft:
    """An entry to append; the log assigns its seq, time and hashes."""

    actor: str
    action: str
    subject: str = ""
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.actor or not self.action:
            raise ValueError(f"an audit entry needs an actor and an action, got {self!r}")


@dataclasses.dataclass(frozen=True)
class AuditEntryRecord(_Record):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def content_hash(self) -> str:
        """The hash this entry's content and ``prev_hash`` call for (``hash`` if untouched)."""
        return entry_hash(
            seq=self.seq,
            at=self.at,
            actor=self.actor,
            action=self.action,
            subject=self.subject,
            detail=self.detail,
            prev_hash=self.prev_hash,
        )

    def to_dict(self) -> dict[str, Any]:
        # ``at`` exactly as hashed, so a reader can recompute the hash from this dict alone.
        return {**super().to_dict(), "at": timestamp(self.at)}


@dataclasses.dataclass(frozen=True)
class AuditCheckpointRecord(_Record):
    seq: int
    hash: str
    signature: str
    key_id: str
    at: datetime

    def statement(self) -> bytes:
        return checkpoint_statement(seq=self.seq, hash=self.hash, at=self.at, key_id=self.key_id)


@dataclasses.dataclass(frozen=True)
class AuditHeadRecord(_Record):
    seq: int
    hash: str
    signature: str
    key_id: str

    def statement(self) -> bytes:
        return head_statement(seq=self.seq, hash=self.hash, key_id=self.key_id)


class UnreadableAuditEntry(CatalogError):
    """A row of ``audit_log`` holds a value no append could have written (SQLite keeps any
    text in any column), so it was changed outside meshkit."""

    def __init__(self, seq: int, column: str) -> None:
        super().__init__(
            f"audit entry {seq} cannot be read: its {column} is not a valid value",
            hint="the row was changed outside meshkit; verify the audit log",
        )
        self.seq = seq
        self.column = column


# -- the repository ----------------------------------------------------------------------------

CHECKPOINT: RecordMap[AuditCheckpointRecord] = RecordMap(AuditCheckpointRecord)
HEAD: RecordMap[AuditHeadRecord] = RecordMap(AuditHeadRecord)


class AuditRepository:
    """``catalog.audit``: the append-only log, its checkpoints and its head."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def append(
        self, entries: Sequence[AuditDraft], signer: AuditSigner, *, checkpoint_every: int = 100
    ) -> list[AuditEntryRecord]:
        """Append ``entries`` in one transaction: seqs follow the head's, a signed checkpoint
        lands on every multiple of ``checkpoint_every``, and the head is re-signed.

        The head row is locked first (``SELECT .. FOR UPDATE`` on PostgreSQL; SQLite's write
        transactions start with ``BEGIN IMMEDIATE`` and so are serialised already), so
        concurrent appenders queue and seqs never repeat or skip.
        """
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        if not entries:
            return []
        with self._backend.session(write=True) as s:
            seq, prev = _lock_head(s)
            now = utcnow()  # after the lock, so times follow seqs
            records: list[AuditEntryRecord] = []
            checkpoints: list[dict[str, Any]] = []
            for draft in entries:
                seq += 1
                detail = jsonable(dict(draft.detail))
                digest = entry_hash(
                    seq=seq,
                    at=now,
                    actor=draft.actor,
                    action=draft.action,
                    subject=draft.subject,
                    detail=detail,
                    prev_hash=prev,
                )
                records.append(
                    AuditEntryRecord(
                        seq, now, draft.actor, draft.action, draft.subject, detail, prev, digest
                    )
                )
                if seq % checkpoint_every == 0:
                    statement = checkpoint_statement(
                        seq=seq, hash=digest, at=now, key_id=signer.key_id
                    )
                    checkpoints.append(
                        {
                            "seq": seq,
                            "hash": digest,
                            "signature": signer.sign(statement),
                            "key_id": signer.key_id,
                            "at": now,
                        }
                    )
                prev = digest
            s.execute(_INSERT_ENTRIES, [vars(r) for r in records])  # no deep copy
            if checkpoints:
                s.execute(_INSERT_CHECKPOINTS, checkpoints)
            signature = signer.sign(head_statement(seq=seq, hash=prev, key_id=signer.key_id))
            s.execute(
                _SET_HEAD,
                {"seq": seq, "hash": prev, "signature": signature, "key_id": signer.key_id},
            )
        return records

    def entries(self, after_seq: int = 0, limit: int | None = None) -> list[AuditEntryRecord]:
        """Entries with seq above ``after_seq``, in seq order; page with the last seq read.

        Raises ``UnreadableAuditEntry`` naming the first row whose values cannot be decoded.
        """
        query = select(*_ENTRY_COLUMNS).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq)
        if limit is not None:
            query = query.limit(limit)
        try:
            # Plain rows, not ORM objects: verification reads every entry of the log.
            with self._backend.session() as s:
                return [AuditEntryRecord(*row) for row in s.execute(query)]
        except ValueError:  # a DATETIME or JSON column holding something else
            raise self._unreadable(after_seq, limit) from None

    def checkpoints(
        self, after_seq: int = 0, up_to: int | None = None
    ) -> list[AuditCheckpointRecord]:
        """Checkpoints with ``after_seq < seq <= up_to``, in seq order."""
        query = (
            select(AuditCheckpoint)
            .where(AuditCheckpoint.seq > after_seq)
            .order_by(AuditCheckpoint.seq)
        )
        if up_to is not None:
            query = query.where(AuditCheckpoint.seq <= up_to)
        with self._backend.session() as s:
            return [CHECKPOINT(c) for c in s.scalars(query)]

    def head(self) -> AuditHeadRecord | None:
        """The signed head, or None if nothing was ever appended (or someone deleted it)."""
        with self._backend.session() as s:
            head = s.get(AuditHead, _HEAD_ID)
            if head is None:
                return None
            return HEAD(head)

    def _unreadable(self, after_seq: int, limit: int | None) -> UnreadableAuditEntry:
        """Find which row of a page failed to decode, reading it column by column."""
        with self._backend.session() as s:
            query = (
                select(AuditEntry.seq).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq)
            )
            seqs = list(s.scalars(query.limit(limit) if limit is not None else query))
            for seq in seqs:
                for column in (AuditEntry.at, AuditEntry.detail):
                    try:
                        s.execute(select(column).where(AuditEntry.seq == seq)).one()
                    except ValueError:
                        return UnreadableAuditEntry(seq, column.key)
        raise RuntimeError(
            "an audit page failed to decode, but no row of it does"
        )  # pragma: no cover


def _lock_head(s: Session) -> tuple[int, str]:
    """The head's (seq, hash), locked for the rest of the transaction; created if missing."""
    head = s.execute(_LOCK_HEAD).one_or_none()
    if head is None:
        if s.scalar(select(func.max(AuditEntry.seq))) is not None:
            # A first appender in another process may have committed its entries and the head
            # between our two reads (PostgreSQL reads each statement's latest commit): look again.
            head = s.execute(_LOCK_HEAD).one_or_none()
            if head is not None:
                return head.seq, head.hash
            # Starting a new head would re-sign whatever the tail now is: refuse instead.
            raise CatalogError(
                "the audit log has entries but no signed head: it was changed outside meshkit",
                hint="verify the audit log, and restore the catalog from a backup",
            )
        # Two first appenders may race here: DO NOTHING makes the second wait for the first's
        # commit (PostgreSQL) and then lock the row it created.
        values = {"id": _HEAD_ID, "seq": 0, "hash": GENESIS_HASH, "signature": "", "key_id": ""}
        s.execute(dialect_insert(s, AuditHead).values(values).on_conflict_do_nothing())
        created = s.execute(_LOCK_HEAD).one()
        return created.seq, created.hash
    return head.seq, head.hash
