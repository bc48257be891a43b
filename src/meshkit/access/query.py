"""Running a checked query in a DuckDB that can read nothing but the views it was given.

Each query gets its own in-memory DuckDB. Before the consumer's SQL runs: each product it names
becomes a view (`product_view`: masked columns, row filter) over exactly the Parquet files of
the product version asked for; DuckDB may read those files and no others (`allowed_paths`),
external access is off and the configuration is locked. So even SQL that got past the guard
could not read a file, attach a database, install an extension or change a setting.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshkit.access.masking import ProductView
from meshkit.engines.sql import create_view, empty_relation, table_function
from meshkit.errors import AccessDenied, MeshkitError
from meshkit.tables.delta import Snapshot, list_files

DIALECT = "duckdb"
# DuckDB errors whose text can quote a value (a cast, an overflow): shown without the text.
_VALUE_ERRORS = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)


@dataclass(frozen=True)
class Source:
    """One product as a query reads it: what the caller may see, from which files."""

    view: ProductView
    snapshot: Snapshot
    types: Mapping[str, str]  # the contract's column types (for columns an old version lacks)


def run(
    tree: exp.Query,
    sources: Sequence[Source],
    *,
    max_rows: int,
    timeout_s: float,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> tuple[pa.Table, bool]:
    """The result (at most `max_rows` rows) and whether rows were cut off."""
    con = duckdb.connect(":memory:")
    try:
        files = sorted({f for s in sources for f in list_files(s.snapshot.files)})
        con.execute("SET allowed_paths = $1", [files])
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute("SET memory_limit = $1", [memory_limit])
        for source in sources:
            domain = source.view.product.split(".", 1)[0]
            con.execute(
                exp.Create(
                    this=exp.to_identifier(domain, quoted=True), kind="SCHEMA", exists=True
                ).sql(dialect=DIALECT)
            )
            con.execute(_view_sql(source))
        con.execute("SET lock_configuration = true")
        limited = exp.select(exp.Star()).from_(exp.paren(tree.copy()).as_("q")).limit(max_rows + 1)
        table = _fetch(con, limited.sql(dialect=DIALECT), timeout_s)
    finally:
        con.close()
    if table.num_rows > max_rows:
        return table.slice(0, max_rows), True
    return table, False


def _view_sql(source: Source) -> str:
    present = {name.lower() for name in source.snapshot.schema.names}
    projections: list[exp.Expr] = []
    for column in source.view.columns:
        if column.name.lower() in present:
            projections.append(exp.alias_(column.expression, column.name, quoted=True))
        else:  # an older version without this column: it was empty then
            projections.append(
                exp.alias_(
                    exp.cast(exp.Null(), source.types[column.name]), column.name, quoted=True
                )
            )
    if not projections:
        raise AccessDenied(
            f"you may see no column of {source.view.product}",
            hint="request access to the columns you need",
        )
    paths = list_files(source.snapshot.files)
    if paths:
        query = exp.select(*projections).from_(table_function("read_parquet", paths, {}))
    else:  # a version with no rows: keep the columns and types
        empty = empty_relation([(c, source.types[c]) for c in source.types])
        query = exp.select(*projections).from_(exp.paren(empty).as_("e"))
    if source.view.row_filter is not None:
        query = query.where(source.view.row_filter.copy())
    domain, name = source.view.product.split(".", 1)
    return create_view(name, query, schema=domain).sql(dialect=DIALECT)


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float) -> pa.Table:
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.InterruptException as err:
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
    except duckdb.PermissionException as err:
        raise AccessDenied("the query tried to reach outside the data products") from err
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MeshkitError(
            f"the query failed: {first}", hint="check names against GET /products/{id}/schema"
        ) from err
    finally:
        timer.cancel()
