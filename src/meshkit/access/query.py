"""Running a checked query over exactly the files of the product versions it reads.

Each product the query names becomes a view (`view_sql`: masked columns, row filter) over the
Parquet files of the version asked for; the serving engine of the mesh's engine
(`Engine.serving`, e.g. `meshkit.engines.serving.DuckDBServing`) runs the query in a database
that can read those files and nothing else. Here: which files, the `Cancel` that stops a running query from another
thread, and the row limit; the engine holds the locking-down, the timeout and the value-free
errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa
from sqlglot import exp

from meshkit.access.masking import ProductView
from meshkit.engines.base import Serving
from meshkit.errors import AccessDenied, MeshkitError, ShowColumns
from meshkit.tables.delta import Snapshot, list_files

# Said when a query fails on something else than a value, memory, files or permissions: most
# often a name.
_FAILED_HINT = ShowColumns()


class Cancel:
    """A running query's stop switch, thrown from another thread (the client went away, the
    server is stopping): it interrupts the query's DuckDB connection, now or as soon as the
    query has one. Throwing it again interrupts again (an interrupt that lands between two
    statements is lost), so a watcher may throw it until the query has stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], None]] = []
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        with self._lock:
            self.reason = self.reason or reason
            hooks = list(self._hooks)
        for hook in hooks:
            hook()

    @property
    def is_set(self) -> bool:
        return self.reason is not None

    @contextmanager
    def hooked(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """Call `interrupt` when the switch is thrown while the block runs (at once if it
        already was)."""
        with self._lock:
            self._hooks.append(interrupt)
            thrown = self.reason is not None
        try:
            if thrown:
                interrupt()
            yield
        finally:
            with self._lock:
                self._hooks.remove(interrupt)

    def check(self) -> None:
        if self.reason is not None:
            raise MeshkitError(
                f"the query was cancelled: {self.reason}",
                hint="send it again; a server that is stopping answers elsewhere or later",
            )


@dataclass(frozen=True)
class Source:
    """One product as a query reads it: what the caller may see, from which files, and the
    `CREATE VIEW` that says so (see `view_sql`)."""

    view: ProductView
    snapshot: Snapshot
    sql: str


def run(
    sql: str,
    sources: Sequence[Source],
    *,
    serving: type[Serving],
    max_rows: int,
    timeout_s: float,
    threads: int | None = None,
    memory_limit: str | None = None,
    cancel: Cancel | None = None,
) -> tuple[pa.Table, bool]:
    """The result of `sql` (`guard.render`: capped at `max_rows` + 1 rows, checked as DuckDB
    parses it) and whether rows were cut off at `max_rows`. It stops after `timeout_s`, or
    when `cancel` is thrown."""
    cancel = cancel or Cancel()
    cancel.check()
    table = serving(threads=threads, memory_limit=memory_limit).run(
        sql,
        files=sorted({f for s in sources for f in list_files(s.snapshot.files)}),
        schemas=sorted({s.view.product.split(".", 1)[0] for s in sources}),
        views=[s.sql for s in sources],
        timeout_s=timeout_s,
        stop=cancel,
        failed_hint=_FAILED_HINT,
    )
    if table.num_rows > max_rows:
        return table.slice(0, max_rows), True
    return table, False


def view_sql(
    view: ProductView, snapshot: Snapshot, types: Mapping[str, str], *, serving: type[Serving]
) -> str:
    """`CREATE VIEW <domain>.<name> AS SELECT <columns or masks> FROM read_parquet(<the
    version's files>) WHERE <row filter>`; `types` are the contract's, for columns an older
    version does not have."""
    present = {name.lower() for name in snapshot.schema.names}
    projections: list[exp.Expr] = []
    for column in view.columns:
        if column.name.lower() in present:
            projections.append(exp.alias_(column.expression, column.name, quoted=True))
        else:  # an older version without this column: it was empty then
            projections.append(
                exp.alias_(exp.cast(exp.Null(), types[column.name]), column.name, quoted=True)
            )
    if not projections:
        raise AccessDenied(
            f"you may see no column of {view.product}",
            hint="request access to the columns you need",
        )
    return serving.view_sql(
        view.product,
        projections,
        list_files(snapshot.files),
        columns=list(types.items()),
        where=view.row_filter,
    )
