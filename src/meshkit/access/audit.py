"""The audit log: record who did what, prove later that nobody changed the record.

Entries go to the catalog (``meshkit.catalog.audit`` describes the chain and signature formats);
this module holds the signing key, checks a log end to end, and exports it as JSON lines that
someone else can check without meshkit or the catalog. Verification and export read the log in
pages, so a log of millions of entries never sits in memory.

Verification stops at the first problem and names it: ``first_bad`` is the seq from which the
log can no longer be trusted. An entry's own flaws (edited, missing, inserted, reordered) are
found by the hash chain. A tail that was cut off, or rewritten with freshly computed hashes, is
found by the signatures: checkpoints every ``checkpoint_every`` entries, and the head naming the
latest entry. What no signature in the catalog can reveal is a log deleted entirely, head and
all, or rolled back: that takes a copy of a later head outside it, the head file (``witness``),
which ``AuditLog`` keeps after each append and compares the log with.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from meshkit.access import witness
from meshkit.access.keys import (
    Ed25519Signer,
    derive_secret,
    load_or_create_key,
    load_public_key,
    public_key_id,
    public_pem,
    signed_by,
)
from meshkit.catalog import Catalog
from meshkit.catalog.audit import (
    GENESIS_HASH,
    AuditCheckpointRecord,
    AuditDraft,
    AuditEntryRecord,
    AuditHeadRecord,
    UnreadableAuditEntry,
    canonical_json,
    head_statement,
    timestamp,
)

__all__ = [
    "AuditDraft",
    "AuditLog",
    "Ed25519Signer",
    "Verification",
    "derive_secret",
    "export_log",
    "load_or_create_key",
    "load_public_key",
    "public_key_id",
    "public_pem",
    "verify_export",
    "verify_log",
]

PAGE_SIZE: Final = 1000
DEFAULT_CHECKPOINT_EVERY: Final = 100

# -- the log -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verification:
    """The outcome of checking a log: counts of what was good, and the first problem."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad: int | None = None
    problem: str | None = None
    head_file: str | None = None
    """The head file the log was compared with (None: none was asked for)."""
    witnessed: int | None = None
    """The seq that head file witnessed; None when there was no such file, or no valid one."""


class AuditLog:
    """Appends signed entries to a catalog's audit log, and verifies and exports it."""

    def __init__(
        self,
        catalog: Catalog,
        key: Ed25519PrivateKey,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        head_file: Path | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.catalog = catalog
        self.checkpoint_every = checkpoint_every
        self.head_file = head_file  # the signed head kept outside the catalog (`witness`)
        self._signer = Ed25519Signer(key)
        self.public_key = key.public_key()

    def record(
        self, actor: str, action: str, subject: str = "", /, **detail: Any
    ) -> AuditEntryRecord:
        """Append one entry, e.g. ``record("ana", "grant.approve", "sales.orders", grant=7)``."""
        (entry,) = self.record_many([AuditDraft(actor, action, subject, detail)])
        return entry

    def record_many(self, drafts: Iterable[AuditDraft]) -> list[AuditEntryRecord]:
        """Append entries in one transaction: all of them get consecutive seqs, or none; then,
        once committed, the new head goes to the head file (if any)."""
        records = self.catalog.audit.append(
            list(drafts), self._signer, checkpoint_every=self.checkpoint_every
        )
        if records and self.head_file is not None:
            last, first = records[-1], records[0]
            key_id = self._signer.key_id
            statement = head_statement(seq=last.seq, hash=last.hash, key_id=key_id)
            head = AuditHeadRecord(last.seq, last.hash, self._signer.sign(statement), key_id)

            def extends(old: AuditHeadRecord) -> bool:
                if first.seq == old.seq + 1 and first.prev_hash == old.hash:
                    return True  # the usual case: nobody appended in between
                return self._hash_at(old.seq) == old.hash

            witness.advance(self.head_file, head, extends=extends)
        return records

    def verify(
        self, public_key: Ed25519PublicKey | None = None, *, head_file: Path | None = None
    ) -> Verification:
        """Check the whole log against ``public_key`` (by default, this log's own), and against
        ``head_file`` (by default, this log's own head file, if it has one)."""
        key = public_key or self.public_key
        path = head_file or self.head_file
        if path is None:
            return verify_log(self.catalog, key, checkpoint_every=self.checkpoint_every)
        try:
            head = witness.read(path)  # before the log: see `witness.compare`
        except witness.HeadFileError as err:
            result = verify_log(self.catalog, key, checkpoint_every=self.checkpoint_every)
            return _also(result, None, err.message, head_file=path, witnessed=None)
        result = verify_log(self.catalog, key, checkpoint_every=self.checkpoint_every)
        if head is None:
            return dataclasses.replace(result, head_file=witness.shown(path))
        problem = witness.signature_problem(head, key, path)
        if problem is not None:
            return _also(result, None, problem, head_file=path, witnessed=None)
        found = witness.compare(head, path, last=result.entries, hash_at=self._hash_at)
        first_bad, message = found if found is not None else (None, None)
        return _also(result, first_bad, message, head_file=path, witnessed=head.seq)

    def _hash_at(self, seq: int) -> str | None:
        entries = self.catalog.audit.entries(seq - 1, limit=1)
        return entries[0].hash if entries and entries[0].seq == seq else None

    def export(self, stream: TextIO, after_seq: int = 0) -> int:
        """Write entries after ``after_seq`` to ``stream``; see ``export_log``."""
        return export_log(self.catalog, stream, after_seq=after_seq)


def _also(
    result: Verification,
    first_bad: int | None,
    problem: str | None,
    *,
    head_file: Path,
    witnessed: int | None,
) -> Verification:
    """`result` with what the head file showed: a problem of the log's own comes first."""
    checked = dataclasses.replace(result, head_file=witness.shown(head_file), witnessed=witnessed)
    if problem is None or not result.ok:
        return checked
    return dataclasses.replace(checked, ok=False, first_bad=first_bad, problem=problem)


def verify_log(
    catalog: Catalog,
    public_key: Ed25519PublicKey,
    *,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> Verification:
    """Check a catalog's audit log; needs only the public key, so an auditor can run it.

    ``checkpoint_every`` must be the interval the log was written with: a checkpoint missing
    from one of its multiples counts as removed.
    """
    return _Walk(public_key, checkpoint_every).run(_CatalogSource(catalog, 0))


def export_log(catalog: Catalog, stream: TextIO, *, after_seq: int = 0) -> int:
    """Write the entries after ``after_seq`` as JSON lines; returns how many were written.

    A line holds every column of its entry (``at`` exactly as hashed), plus ``checkpoint``
    (``hash``, ``signature``, ``key_id``, ``at``) on entries that have one; the last line also
    carries the signed ``head``. ``verify_export`` checks such a file, and so can anyone who
    follows the formats in ``meshkit.catalog.audit``.
    """
    source = _CatalogSource(catalog, after_seq)
    pending: dict[str, Any] | None = None
    written = 0
    for entry, checkpoint in source.entries():
        if pending is not None:
            _write_line(stream, pending)
            written += 1
        pending = entry.to_dict()
        if checkpoint is not None:
            pending["checkpoint"] = {
                "hash": checkpoint.hash,
                "signature": checkpoint.signature,
                "key_id": checkpoint.key_id,
                "at": timestamp(checkpoint.at),
            }
    if pending is None:
        return 0
    # The head is read once the last page is, so it covers every line written.
    head = source.head()
    if head is not None:
        pending["head"] = dataclasses.asdict(head)
    _write_line(stream, pending)
    return written + 1


def verify_export(
    lines: Iterable[str],
    public_key: Ed25519PublicKey,
    *,
    after_seq: int = 0,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> Verification:
    """Check an export written by ``export_log`` (with the same ``after_seq``). A partial
    export is checked from its first entry on, whose ``prev_hash`` is taken on trust."""
    return _Walk(public_key, checkpoint_every).run(_LinesSource(lines, after_seq))


def _write_line(stream: TextIO, line: dict[str, Any]) -> None:
    stream.write(canonical_json(line).decode())
    stream.write("\n")


# -- where entries come from -------------------------------------------------------------------


class _Unreadable(Exception):
    """An entry that cannot even be decoded: at ``seq`` if known, else the next one."""

    def __init__(self, seq: int | None, problem: str) -> None:
        super().__init__(problem)
        self.seq = seq
        self.problem = problem


_Item = tuple[AuditEntryRecord, AuditCheckpointRecord | None]


class _Source(Protocol):
    start: int
    """The seq the entries follow: 0 for a whole log; else the first one's prev is trusted."""

    def entries(self) -> Iterator[_Item]:
        """Entries in seq order, each with its checkpoint; may raise ``_Unreadable``."""
        ...

    def checkpoints_after(self, seq: int) -> list[AuditCheckpointRecord]:
        """Checkpoints beyond the last entry: proof of a truncated log."""
        ...

    def head(self) -> AuditHeadRecord | None:
        """The signed head, asked for once ``entries()`` is exhausted."""
        ...


class _CatalogSource:
    def __init__(self, catalog: Catalog, after_seq: int) -> None:
        self._catalog = catalog
        self.start = after_seq
        self._head: AuditHeadRecord | None = None

    def entries(self) -> Iterator[_Item]:
        after, size, head_read = self.start, PAGE_SIZE, False
        while True:
            try:
                page = self._catalog.audit.entries(after, size)
            except UnreadableAuditEntry as exc:
                if size > 1:  # read the rows before the bad one, one by one, then fail there
                    size = 1
                    continue
                raise _Unreadable(exc.seq, f"its {exc.column} is not a valid value") from None
            if not page:
                if head_read:
                    return
                # Appends write entries and head in one transaction, so a head read after the
                # last page covers every entry read; if it is further on, appends landed in the
                # meantime: read those too.
                self._head = self._catalog.audit.head()
                if self._head is None or self._head.seq <= after:
                    return
                head_read = True
                continue
            head_read = False
            last = page[-1].seq
            checkpoints = {c.seq: c for c in self._catalog.audit.checkpoints(after, last)}
            for entry in page:
                yield entry, checkpoints.get(entry.seq)
            after = last

    def checkpoints_after(self, seq: int) -> list[AuditCheckpointRecord]:
        # An append that committed after the last page was read brings a checkpoint beyond it,
        # but also that checkpoint's entry (one transaction): only a checkpoint whose entry is
        # gone shows a cut; otherwise the log just grew while it was read.
        found = self._catalog.audit.checkpoints(seq)
        if found:
            try:
                entry = self._catalog.audit.entries(found[0].seq - 1, limit=1)
            except UnreadableAuditEntry:
                return found
            if entry and entry[0].seq == found[0].seq:
                return []
        return found

    def head(self) -> AuditHeadRecord | None:
        return self._head


class _LinesSource:
    def __init__(self, lines: Iterable[str], after_seq: int) -> None:
        self._lines = lines
        self.start = after_seq
        self._head: AuditHeadRecord | None = None

    def entries(self) -> Iterator[_Item]:
        for number, line in enumerate(self._lines, 1):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
                yield self._item(fields)
            except (ValueError, TypeError, KeyError) as exc:
                raise _Unreadable(None, f"line {number} is not an audit entry ({exc})") from None

    def _item(self, fields: dict[str, Any]) -> _Item:
        seq = int(fields["seq"])
        entry = AuditEntryRecord(
            seq=seq,
            at=datetime.fromisoformat(fields["at"]),
            actor=str(fields["actor"]),
            action=str(fields["action"]),
            subject=str(fields["subject"]),
            detail=dict(fields["detail"]),
            prev_hash=str(fields["prev_hash"]),
            hash=str(fields["hash"]),
        )
        checkpoint = None
        if "checkpoint" in fields:
            c = fields["checkpoint"]
            checkpoint = AuditCheckpointRecord(
                seq, str(c["hash"]), str(c["signature"]), str(c["key_id"]), _at(c["at"])
            )
        if "head" in fields:
            h = fields["head"]
            self._head = AuditHeadRecord(
                int(h["seq"]), str(h["hash"]), str(h["signature"]), str(h["key_id"])
            )
        return entry, checkpoint

    def checkpoints_after(self, seq: int) -> list[AuditCheckpointRecord]:
        return []  # an export holds checkpoints only on the entries it has

    def head(self) -> AuditHeadRecord | None:
        return self._head


def _at(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return at


# -- the check ---------------------------------------------------------------------------------


class _Walk:
    """One pass over a log: the chain entry by entry, then the checkpoints beyond it and the
    head. State is the last two hashes (enough to tell an inserted entry) and counts."""

    def __init__(self, public_key: Ed25519PublicKey, checkpoint_every: int) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.key = public_key
        self.key_id = public_key_id(public_key)
        self.every = checkpoint_every
        self.entries = 0
        self.checkpoints = 0
        self.trusted = 0  # seq of the last entry a valid signature vouches for

    def run(self, source: _Source) -> Verification:
        items = _Lookahead(source.entries())
        expected, prev, before_prev = source.start + 1, GENESIS_HASH, None
        self.trusted = source.start
        try:
            for entry, checkpoint in items:
                if self.entries == 0 and source.start > 0 and entry.seq == expected:
                    if not _is_hash(entry.prev_hash):
                        return self._bad(entry.seq, f"entry {entry.seq} has no valid prev hash")
                    prev = entry.prev_hash  # a partial export: what it follows is not in it
                problem = self._entry(entry, expected, prev, before_prev, items)
                if problem is None:
                    problem = self._checkpoint(entry, checkpoint)
                if problem is not None:
                    return self._bad(*problem)
                expected, before_prev, prev = expected + 1, prev, entry.hash
                self.entries += 1
        except _Unreadable as exc:
            if exc.seq is not None and exc.seq > expected:
                return self._bad(expected, _missing(expected, exc.seq))
            return self._bad(expected, f"entry {expected} was edited: {exc.problem}")
        return self._end(source, expected - 1, prev)

    def _entry(
        self,
        entry: AuditEntryRecord,
        expected: int,
        prev: str,
        before_prev: str | None,
        items: _Lookahead,
    ) -> tuple[int, str] | None:
        seq = entry.seq
        if seq != expected:
            return expected, _missing(expected, seq)
        if entry.prev_hash != prev:
            if entry.prev_hash == before_prev:
                return seq - 1, (
                    f"entry {seq - 1} was inserted: entry {seq} names entry {seq - 2} "
                    "as its predecessor"
                )
            return seq, (
                f"entry {seq} does not follow entry {seq - 1} (prev hash mismatch): "
                "inserted or reordered"
            )
        if entry.content_hash() != entry.hash:
            following = items.peek()
            if following is not None and following[0].prev_hash == prev:
                return seq, (
                    f"entry {seq} was inserted: entry {seq + 1} names entry {seq - 1} "
                    "as its predecessor"
                )
            return seq, f"entry {seq} was edited: its hash does not match its content"
        return None

    def _checkpoint(
        self, entry: AuditEntryRecord, checkpoint: AuditCheckpointRecord | None
    ) -> tuple[int, str] | None:
        seq = entry.seq
        if checkpoint is None:
            if seq % self.every == 0:
                return seq, f"checkpoint at {seq} is missing"
            return None
        problem = self._signature(f"checkpoint at {seq}", checkpoint, checkpoint.statement())
        if problem is not None:
            return seq, problem
        if checkpoint.hash != entry.hash:
            return self.trusted + 1, (
                f"entries {self.trusted + 1} to {seq} were rewritten: entry {seq} does not "
                f"match the signed checkpoint at {seq}"
            )
        self.checkpoints += 1
        self.trusted = seq
        return None

    def _end(self, source: _Source, last: int, last_hash: str) -> Verification:
        head = source.head()
        head_problem = (
            None if head is None else self._signature("the signed head", head, head.statement())
        )
        if head is not None and head_problem is None and head.seq > last:
            return self._bad(
                last + 1,
                f"the log ends at entry {last} but the signed head says {head.seq}: "
                "entries were truncated",
            )
        # Without a trustworthy head, a signed checkpoint beyond the end still shows a cut.
        for checkpoint in source.checkpoints_after(last):
            problem = self._signature(
                f"checkpoint at {checkpoint.seq}", checkpoint, checkpoint.statement()
            )
            if problem is not None:
                return self._bad(checkpoint.seq, problem)
            return self._bad(
                last + 1,
                f"the log ends at entry {last} but the signed checkpoint at {checkpoint.seq} "
                "covers more: entries were truncated",
            )
        after_trusted = self.trusted + 1
        if head is None:
            if self.entries == 0:
                return self._ok()
            return self._bad(after_trusted, "the signed head is missing")
        if head_problem is not None:
            return self._bad(after_trusted, head_problem)
        if head.seq < last:
            extra = f"entry {last}" if last == head.seq + 1 else f"entries {head.seq + 1} to {last}"
            return self._bad(
                head.seq + 1,
                f"{extra} came after the signed head ({head.seq}): appended without the key",
            )
        if head.hash != last_hash:
            return self._bad(
                after_trusted,
                f"entries {after_trusted} to {last} were rewritten: entry {last} does not "
                "match the signed head",
            )
        return self._ok()

    def _signature(
        self, what: str, signed: AuditCheckpointRecord | AuditHeadRecord, statement: bytes
    ) -> str | None:
        if signed_by(self.key, signed.signature, statement):
            return None
        if signed.key_id != self.key_id:
            return f"{what} names key {signed.key_id!r}, not the verifying key {self.key_id!r}"
        return f"{what} has a bad signature"

    def _ok(self) -> Verification:
        return Verification(True, self.entries, self.checkpoints)

    def _bad(self, first_bad: int, problem: str) -> Verification:
        return Verification(False, self.entries, self.checkpoints, first_bad, problem)


class _Lookahead:
    """An iterator that can show its next item without consuming it (or None at the end)."""

    def __init__(self, items: Iterator[_Item]) -> None:
        self._items = items
        self._next: list[_Item] = []

    def __iter__(self) -> _Lookahead:
        return self

    def __next__(self) -> _Item:
        return self._next.pop() if self._next else next(self._items)

    def peek(self) -> _Item | None:
        if not self._next:
            try:
                self._next.append(next(self._items))
            except (StopIteration, _Unreadable):
                return None
        return self._next[0]


def _missing(expected: int, found: int) -> str:
    if expected == 1 and found > 1:
        return f"entry 1 is missing (the log starts at {found})"
    if found == expected + 1:
        return f"entry {expected} is missing (the log jumps from {expected - 1} to {found})"
    return (
        f"entries {expected} to {found - 1} are missing "
        f"(the log jumps from {expected - 1} to {found})"
    )


def _is_hash(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 32
    except ValueError:
        return False
