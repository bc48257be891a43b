"""The build lock: one build of a table at a time, across processes.

A build holds an exclusive `flock` on a small file next to its table
(`<warehouse>/<domain>/.<name>.build-lock`) from before it reads the table's state until it has
recorded the version it published. Another build of the same table waits for it, then sees the
new version (and is usually up to date). The kernel drops the lock when its process ends,
however it ends (exit, crash, SIGKILL), so a dead build never leaves it held, and there is no
lease to expire or to steal.

The lock holds across the processes of one host, and across hosts where the warehouse
filesystem supports `flock` between clients (NFSv4, where Linux maps it to byte-range locks,
released when the lease of a dead client expires). Object stores have no such lock; there the
commit's own conflict check (`DeltaTables.commit` fails with `ConflictError` when another
commit landed first) still keeps the table whole: the lock only saves the wasted build.

While it holds the lock, a build writes its PID, host and start time into the file, so a build
that waits can say whom it waits for.

Only a table in the local store (a ``file`` location) has this lock. For a table on an object
store (``s3://``, ``abfss://``) the lock would live next to the table the same way, as an object
``<warehouse>/<domain>/.<name>.build-lock`` written with put-if-absent (the conditional write the
Delta log itself relies on) and holding a lease (holder, expiry) that a waiting build may take
over once it expires, since no kernel releases it when its process dies. That is not built:
`build_lock` refuses a location that is not local.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from meshkit.errors import MeshkitError
from meshkit.tables.local import local_path
from meshkit.tables.stores import TableRef, locate

POLL_S = 0.1
"""How often a waiting build tries the lock again."""
REPORT_EVERY_S = 10.0
"""A waiting build reports again after this long (and whenever the holder changes)."""


@dataclass(frozen=True)
class Holder:
    """The build holding a lock, as it described itself (None where it has not yet)."""

    pid: int | None = None
    host: str | None = None
    since: datetime | None = None

    def describe(self) -> str:
        if self.pid is None:
            return "another build"
        return f"pid {self.pid}" + (f" on {self.host}" if self.host else "")


OnWait = Callable[[Holder, float], None]
"""Called while waiting: who holds the lock, and how long this build has waited (seconds)."""


def lock_path(table: TableRef) -> Path:
    """The lock file of a table: next to it (a file inside the table would be a stray file to
    a full vacuum, and a table folder is created by its first commit)."""
    location = locate(table)
    if location.scheme != "file":
        raise MeshkitError(
            f"cannot lock {location}: build locks exist for tables in a local folder only",
            hint="set settings.warehouse to a local (or mounted) folder",
        )
    path = local_path(location)
    return path.parent / f".{path.name}.build-lock"


@contextmanager
def build_lock(
    table: TableRef, *, host: str, on_wait: OnWait = lambda holder, waited: None
) -> Iterator[None]:
    """Hold the build lock of `table`, waiting (and calling `on_wait`) while another process
    holds it. Released when the block ends, or by the kernel if the process dies."""
    path = lock_path(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, on_wait)
        try:
            _describe_self(fd, host)
            yield
        finally:
            with suppress(OSError):
                os.ftruncate(fd, 0)  # no stale holder for the next waiter to name
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, on_wait: OnWait) -> None:
    started = time.monotonic()
    reported: tuple[Holder, float] | None = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _read_holder(path)
        waited = time.monotonic() - started
        if reported is None or holder != reported[0] or waited - reported[1] >= REPORT_EVERY_S:
            on_wait(holder, waited)
            reported = (holder, waited)
        time.sleep(POLL_S)


def _describe_self(fd: int, host: str) -> None:
    text = json.dumps({"pid": os.getpid(), "host": host, "since": datetime.now(UTC).isoformat()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _read_holder(path: Path) -> Holder:
    """The holder's own description; empty while it has not written it yet (a moment)."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return Holder()
    if not isinstance(data, dict):
        return Holder()
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    try:
        when = datetime.fromisoformat(since) if isinstance(since, str) else None
    except ValueError:
        when = None
    return Holder(
        pid=pid if isinstance(pid, int) else None,
        host=host if isinstance(host, str) else None,
        since=when,
    )
