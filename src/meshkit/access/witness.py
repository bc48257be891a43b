"""The head file: the audit log's latest signed head, kept outside the catalog as well.

The catalog's head row tells how long the log is, under the platform key's signature. Whoever
can write the catalog can delete that row with every entry and checkpoint, and an empty log has
nothing left to contradict it. The head file is a copy of the latest head where the catalog's
writers need not reach (by default next to the key file; ship copies of it elsewhere):

* `advance` rewrites it after each append has committed, atomically (a temporary file renamed
  over it) and under an exclusive lock, so that of several processes appending at once the file
  only ever moves forward: a head is written only over one with a lower seq, and only while
  the log still holds the entry that head named (so a log emptied or rewritten behind meshkit's
  back does not wipe the evidence when appends resume).
* `signature_problem` and `compare` are what `meshkit audit verify` adds: a head file not
  signed by the key, a log shorter than the witnessed seq, or one whose entry at that seq has
  another hash (emptied, truncated, rolled back or rewritten).

The file is one JSON object, the head's fields plus its kind, in canonical JSON:
``{"hash", "key_id", "kind": "meshkit.audit.head", "seq", "signature"}``. The signature is over
the same statement as the catalog's head (``meshkit.catalog.audit.head_statement``), so anyone
with the public key can check it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from meshkit.access.keys import public_key_id, signed_by
from meshkit.catalog.audit import HEAD_KIND, AuditHeadRecord, canonical_json
from meshkit.errors import MeshkitError

DEFAULT_NAME = "audit-head.json"


class HeadFileError(MeshkitError):
    """The head file exists but holds no signed head meshkit could have written."""


def shown(path: Path) -> str:
    """A path as messages show it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read(path: Path) -> AuditHeadRecord | None:
    """The head in the file at `path`; None when there is no such file; HeadFileError when
    it is not a head (its signature is not checked here: see `signature_problem`)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise HeadFileError(
            f"cannot read the head file {shown(path)}: {err.strerror}",
            hint="the head file must be readable by the user meshkit runs as",
        ) from err
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict) or fields.get("kind") != HEAD_KIND:
            raise ValueError(f"its kind is not {HEAD_KIND!r}")
        head = AuditHeadRecord(
            seq=fields["seq"],
            hash=fields["hash"],
            signature=fields["signature"],
            key_id=fields["key_id"],
        )
        if isinstance(head.seq, bool) or not (isinstance(head.seq, int) and head.seq >= 1):
            raise ValueError("its seq is not a positive integer")
        if not all(isinstance(v, str) for v in (head.hash, head.signature, head.key_id)):
            raise ValueError("its hash, signature and key_id are not all text")
    except (ValueError, KeyError) as err:
        why = f"it has no {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise HeadFileError(
            f"the head file ({shown(path)}) is not a signed audit head: {why}",
            hint="it was changed outside meshkit; compare it with a copy you shipped elsewhere",
        ) from None
    return head


def signature_problem(
    head: AuditHeadRecord, public_key: Ed25519PublicKey, path: Path
) -> str | None:
    """What is wrong with the head file's signature, or None if `public_key` made it."""
    if signed_by(public_key, head.signature, head.statement()):
        return None
    key_id = public_key_id(public_key)
    if head.key_id != key_id:
        return (
            f"the head file ({shown(path)}) names key {head.key_id!r}, "
            f"not the verifying key {key_id!r}"
        )
    return f"the head file ({shown(path)}) has a bad signature"


def compare(
    head: AuditHeadRecord, path: Path, *, last: int, hash_at: Callable[[int], str | None]
) -> tuple[int, str] | None:
    """(first bad seq, problem) when a log whose last entry is `last` (a log that verified on
    its own) does not hold the witnessed head; `hash_at(seq)` reads an entry's hash.

    The file must have been read before the log was: it is written after its entry commits,
    so what it names was in the log when the log was read, unless someone removed it."""
    if last < head.seq:
        return last + 1, (
            f"the log ends at entry {last} but the head file ({shown(path)}) witnessed entry "
            f"{head.seq}: entries were deleted, or the catalog was rolled back"
        )
    if hash_at(head.seq) != head.hash:
        # A log that verifies but disagrees with a head signed by the same key was rebuilt:
        # where the two part is unknown, so nothing in it is vouched for.
        return 1, (
            f"entry {head.seq} does not match the head file ({shown(path)}): the log was "
            "rewritten or replaced"
        )
    return None


def advance(
    path: Path, head: AuditHeadRecord, *, extends: Callable[[AuditHeadRecord], bool]
) -> bool:
    """Write `head` to the file unless it already names a later or equal seq, or a head that
    the log no longer extends (`extends(old)`: the log holds old's entry with old's hash):
    that file is evidence of a log emptied, cut or rewritten behind meshkit's back, kept for
    verify to report. A file that holds no head at all is replaced. Whether the file was
    written; MeshkitError when it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            try:
                old = read(path)
            except HeadFileError:
                old = None  # not evidence of anything in the log (a crash mid-write, say)
            if old is not None and (old.seq >= head.seq or not extends(old)):
                return False
            _replace(path, head)
            return True
    except OSError as err:
        raise MeshkitError(
            f"cannot write the audit head file {shown(path)}: {err.strerror}",
            hint="make its folder writable by the user meshkit runs as, or set "
            "settings.audit.head_file to a path that is",
        ) from err


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `<file>.lock` for the time of a read-compare-write: the file itself
    is replaced on each write, so it cannot carry the lock."""
    fd = os.open(path.with_name(f"{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace(path: Path, head: AuditHeadRecord) -> None:
    body = {
        "kind": HEAD_KIND,
        "seq": head.seq,
        "hash": head.hash,
        "key_id": head.key_id,
        "signature": head.signature,
    }
    temporary = path.with_name(f".{path.name}.{uuid4().hex}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(canonical_json(body) + b"\n")
        # No fsync: it would cost more than the append itself. A crash may leave the file a
        # head behind (harmless: verify compares what it covers) or, rarely, empty (verify
        # says so, and the next append replaces it).
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
