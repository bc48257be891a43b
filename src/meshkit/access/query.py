"""Running a checked query in a DuckDB that can read nothing but the views it was given.

Each query gets its own in-memory DuckDB. Before the consumer's SQL runs: each product it names
becomes a view (`product_view`: masked columns, row filter) over exactly the Parquet files of
the product version asked for; DuckDB may read those files and no others (`allowed_paths`),
external access is off and the configuration is locked. So even SQL that got past the guard
could not read a file, attach a database, install an extension or change a setting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshkit.access.masking import ProductView
from meshkit.errors import AccessDenied, Hint, MeshkitError
from meshkit.sql.generate import create_view, empty_relation, table_function
from meshkit.tables.delta import Snapshot, list_files

DIALECT = "duckdb"
# DuckDB errors whose text can quote a value (a cast, an overflow): shown without the text.
_VALUE_ERRORS = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)


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
    config: dict[str, Any] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if threads:
        config["threads"] = int(threads)
    if memory_limit:
        config["memory_limit"] = memory_limit
    files = sorted({f for s in sources for f in list_files(s.snapshot.files)})
    setup = [
        # allowed_paths first: it cannot be changed once external access is off
        exp.Set(
            expressions=[
                exp.SetItem(
                    this=exp.EQ(
                        this=exp.var("allowed_paths"),
                        expression=exp.Array(expressions=[exp.Literal.string(f) for f in files]),
                    )
                )
            ]
        ).sql(dialect=DIALECT),
        "SET enable_external_access = false",
        "SET TimeZone = 'UTC'",  # not the server's
        "SET enable_progress_bar = false",  # a core module never prints (nor the server)
        *(
            exp.Create(this=exp.to_identifier(d, quoted=True), kind="SCHEMA", exists=True).sql(
                dialect=DIALECT
            )
            for d in sorted({s.view.product.split(".", 1)[0] for s in sources})
        ),
        *(s.sql for s in sources),
        "SET lock_configuration = true",
    ]
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute(";\n".join(setup))
        with cancel.hooked(con.interrupt):
            table = _fetch(con, sql, timeout_s, cancel)
    finally:
        _CLOSER.submit(con.close)  # closing takes milliseconds: not on the caller's time
    if table.num_rows > max_rows:
        return table.slice(0, max_rows), True
    return table, False


_CLOSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meshkit-duckdb-close")


def view_sql(view: ProductView, snapshot: Snapshot, types: Mapping[str, str]) -> str:
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
    paths = list_files(snapshot.files)
    if paths:
        query = exp.select(*projections).from_(table_function("read_parquet", paths, {}))
    else:  # a version with no rows: keep the columns and types
        empty = empty_relation(list(types.items()), dialect=DIALECT)
        query = exp.select(*projections).from_(exp.paren(empty).as_("e"))
    if view.row_filter is not None:
        query = query.where(view.row_filter.copy())
    domain, name = view.product.split(".", 1)
    return create_view(name, query, schema=domain).sql(dialect=DIALECT)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float, cancel: Cancel) -> pa.Table:
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cancel.check()
        return con.sql(sql).to_arrow_table()
    except duckdb.InterruptException as err:
        cancel.check()
        raise MeshkitError(
            f"the query was cancelled after {timeout_s:g} s",
            hint="filter or aggregate more, or ask for a longer access.query_timeout",
        ) from err
    except _VALUE_ERRORS as err:
        kind = type(err).__name__.removesuffix("Exception")
        raise MeshkitError(
            f"the query failed on a value ({kind} error); values are not shown in errors",
            hint="guard the expression, e.g. with TRY_CAST or a CASE",
        ) from err
    except duckdb.OutOfMemoryException as err:  # its text tells the server's memory
        raise MeshkitError(
            "the query ran out of memory", hint="aggregate or filter more, or ask for fewer rows"
        ) from err
    except duckdb.IOException as err:  # its text names server paths
        raise MeshkitError(
            "the product's files could not be read (the version may have been vacuumed)",
            hint="query the latest version, or ask the owners",
        ) from err
    except duckdb.PermissionException as err:
        raise AccessDenied("the query tried to reach outside the data products") from err
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MeshkitError(
            f"the query failed: {first}",
            hint=Hint(
                cli="`meshkit show <domain>.<product>` lists its columns",
                api="check names against GET /products/{id}/schema",
            ),
        ) from err
    finally:
        timer.cancel()
