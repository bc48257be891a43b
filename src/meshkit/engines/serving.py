"""The serving engine: runs one checked query in a fresh DuckDB that can read nothing but the
views it was given.

Each query gets its own in-memory DuckDB. Before the consumer's SQL runs, each product it names
becomes a view over exactly the Parquet files of the version asked for (`view_sql`); DuckDB may
read those files and no others (`allowed_paths`), external access is off, extensions are never
installed or loaded, and the configuration is locked. So even SQL that got past the guard could
not read a file, attach a database, install an extension or change a setting.

The query stops after its timeout, or when its `Stop` is thrown from another thread; DuckDB's
errors become `MeshkitError`s whose text quotes no value and no server path.

What to serve (which versions, which files, which masks) and the row limit are decided above,
in `meshkit.access.query`, which knows nothing of DuckDB.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshkit.engines.base import Stop
from meshkit.errors import AccessDenied, MeshkitError, NextStep
from meshkit.sql.generate import create_view, empty_relation, table_function

# DuckDB errors whose text can quote a value (a cast, an overflow): shown without the text.
_VALUE_ERRORS = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)


class DuckDBServing:
    """Queries served by DuckDB, one locked-down in-memory database per query."""

    name: ClassVar[str] = "duckdb"
    dialect: ClassVar[str] = "duckdb"

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.threads = threads
        self.memory_limit = memory_limit

    @classmethod
    def view_sql(
        cls,
        product: str,
        projections: Sequence[exp.Expr],
        files: Sequence[str],
        *,
        columns: Sequence[tuple[str, str]],
        where: exp.Expr | None = None,
    ) -> str:
        """`CREATE VIEW <domain>.<name> AS SELECT <projections> FROM read_parquet(<files>)
        WHERE <where>`; with no files (a version with no rows), over a typed empty relation of
        `columns`, so the view keeps its columns and types."""
        if files:
            query = exp.select(*projections).from_(table_function("read_parquet", files, {}))
        else:
            empty = empty_relation(list(columns), dialect=cls.dialect)
            query = exp.select(*projections).from_(exp.paren(empty).as_("e"))
        if where is not None:
            query = query.where(where.copy())
        domain, name = product.split(".", 1)
        return create_view(name, query, schema=domain).sql(dialect=cls.dialect)

    def run(
        self,
        sql: str,
        *,
        files: Sequence[str],
        schemas: Sequence[str],
        views: Sequence[str],
        timeout_s: float,
        stop: Stop,
        failed_hint: str | NextStep | None = None,
    ) -> pa.Table:
        """The result of `sql` over `views` (from `view_sql`, created in `schemas`), reading
        only `files`. Stops after `timeout_s`, or when `stop` is thrown. A failure that is not
        about a value, memory, files or permissions is reported with `failed_hint`."""
        config: dict[str, Any] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if self.threads:
            config["threads"] = int(self.threads)
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        con = duckdb.connect(":memory:", config=config)
        try:
            con.execute(";\n".join(self._setup(files, schemas, views)))
            with stop.hooked(con.interrupt):
                return self._fetch(con, sql, timeout_s, stop, failed_hint)
        finally:
            _CLOSER.submit(con.close)  # closing takes milliseconds: not on the caller's time

    def _setup(
        self, files: Sequence[str], schemas: Sequence[str], views: Sequence[str]
    ) -> list[str]:
        return [
            # allowed_paths first: it cannot be changed once external access is off
            exp.Set(
                expressions=[
                    exp.SetItem(
                        this=exp.EQ(
                            this=exp.var("allowed_paths"),
                            expression=exp.Array(
                                expressions=[exp.Literal.string(f) for f in files]
                            ),
                        )
                    )
                ]
            ).sql(dialect=self.dialect),
            "SET enable_external_access = false",
            "SET TimeZone = 'UTC'",  # not the server's
            "SET enable_progress_bar = false",  # a core module never prints (nor the server)
            *(
                exp.Create(this=exp.to_identifier(s, quoted=True), kind="SCHEMA", exists=True).sql(
                    dialect=self.dialect
                )
                for s in schemas
            ),
            *views,
            "SET lock_configuration = true",
        ]

    @staticmethod
    def _fetch(
        con: duckdb.DuckDBPyConnection,
        sql: str,
        timeout_s: float,
        stop: Stop,
        failed_hint: str | NextStep | None,
    ) -> pa.Table:
        timer = threading.Timer(timeout_s, con.interrupt)
        timer.start()
        try:
            stop.check()
            return con.sql(sql).to_arrow_table()
        except duckdb.InterruptException as err:
            stop.check()
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
                "the query ran out of memory",
                hint="aggregate or filter more, or ask for fewer rows",
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
            raise MeshkitError(f"the query failed: {first}", hint=failed_hint) from err
        finally:
            timer.cancel()


_CLOSER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meshkit-duckdb-close")
