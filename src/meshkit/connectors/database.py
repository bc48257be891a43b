"""Stage a SQL database table (or a SELECT) as a Parquet file, streaming.

DuckDB's ``sqlite``/``postgres`` extensions have to be downloaded, which our machines cannot do,
so a "database table" input port is read through SQLAlchemy and staged as Parquet for DuckDB to
scan. Rows are fetched ``batch_size`` at a time (a server-side cursor where the driver has one)
and every batch becomes one Parquet row group, so memory stays bounded by one batch.

The Arrow schema is decided before the first row is written:

* ``table=``: from the reflected column types (see `meshkit.connectors.types`; the mapping is
  listed in the docs). All integer types become ``int64`` (SQLite integers are 64-bit anyway, and one
  width keeps joins across sources simple). A ``NUMERIC`` without a declared precision becomes
  ``float64``; columns whose type the database does not declare are inferred as for queries.
* ``query=``: from the driver's column types where they are meaningful (PostgreSQL type OIDs,
  including ``numeric(p, s)``), otherwise inferred from the Python values of the first batch;
  later batches are converted to that schema. A column that is entirely NULL in the first batch
  (or in an empty result) is staged as ``string``.

Every column is nullable in the staged file; the product's schema contract decides the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from meshkit.connectors.parquet import ParquetSink, prepare_dest
from meshkit.connectors.reading import execute_query, execute_table, stream
from meshkit.connectors.sessions import URL_EXAMPLES, connect, create_engine, make_read_only
from meshkit.errors import InputError
from meshkit.urls import mask_url

__all__ = ["ExportResult", "export_table"]


@dataclass(frozen=True)
class ExportResult:
    """What ``export_table`` wrote: the Parquet file, its row count and column names."""

    path: Path
    rows: int
    columns: list[str]
    source: str
    """The masked URL plus ``/table`` (``/schema.table``) or ``[query]``."""


def export_table(
    url: str,
    *,
    table: str | None = None,
    query: str | None = None,
    schema: str | None = None,
    dest: Path,
    batch_size: int = 50_000,
) -> ExportResult:
    """Read ``table`` (or the SELECT ``query``) from the database at ``url`` into Parquet ``dest``.

    ``schema`` qualifies ``table`` (e.g. a PostgreSQL schema); it cannot be combined with
    ``query``, which runs as-is on the source database (in its own SQL dialect) inside a read-only
    transaction. ``dest`` is a file path; missing parent directories are created and the file is
    replaced atomically, so a failed export never leaves a partial file behind.

    Raises ``InputError`` (with a hint) for everything a user can get wrong: the URL, a missing
    driver, an unreachable server, a missing SQLite file, an unknown table, missing privileges,
    a failing query or values that do not fit the column's type.
    """
    _check_arguments(table, query, schema, batch_size)
    parsed = _parse_url(url)
    masked = mask_url(parsed)
    qualified = f"{schema}.{table}" if schema else str(table)
    source = f"{masked}/{qualified}" if table is not None else f"{masked}[query]"
    label = f"table {qualified!r}" if table is not None else "the query"
    _check_sqlite_file(parsed, masked)
    dest = Path(dest)
    prepare_dest(dest)

    engine = create_engine(parsed, masked)
    try:
        sink = ParquetSink(dest)
        try:
            with connect(engine, parsed, masked) as conn:
                make_read_only(conn, parsed, masked)
                if table is not None:
                    result, plans = execute_table(conn, parsed, masked, table, schema, batch_size)
                else:
                    assert query is not None
                    result, plans = execute_query(conn, parsed, masked, query, batch_size)
                sink.begin(plans, label=label)
                stream(result, sink, parsed, masked, label, batch_size)
            sink.commit()
        finally:
            sink.discard()
    finally:
        engine.dispose()
    return ExportResult(path=dest, rows=sink.rows, columns=sink.columns, source=source)


# --------------------------------------------------------------------------- arguments and URL


def _check_arguments(
    table: str | None, query: str | None, schema: str | None, batch_size: int
) -> None:
    if (table is None) == (query is None):
        raise InputError(
            "a database input needs exactly one of `table` and `query`",
            hint="give `table: <name>` to read a whole table, or `query: SELECT ...`",
        )
    if table is not None and not table.strip():
        raise InputError("the database input's `table` is empty", hint="name the table to read")
    if query is not None and schema is not None:
        raise InputError(
            "`schema` only applies to `table`, not to `query`",
            hint="qualify the table names inside the query instead (e.g. FROM sales.orders)",
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(
            f"batch_size must be a positive integer, got {batch_size!r}",
            hint="the default of 50000 rows per batch suits most tables",
        )


def _parse_url(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise InputError("the database URL is empty", hint=URL_EXAMPLES)
    try:
        return make_url(url.strip())
    except (sa_exc.ArgumentError, ValueError, TypeError):
        raise InputError(
            f"cannot parse database URL {mask_url(url)!r}", hint=URL_EXAMPLES
        ) from None


def _sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL points at, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    uri = str(url.query.get("uri", "")).lower() in ("true", "1", "yes")
    if uri or database.startswith("file:"):
        if not uri:
            return Path(database)
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(database)
        if "mode=memory" in parts.query or parts.path in ("", ":memory:"):
            return None
        return Path(unquote(parts.path))
    return Path(database)


def _check_sqlite_file(url: URL, masked: str) -> None:
    """Refuse a SQLite file that does not exist: connecting would create an empty database."""
    if url.get_backend_name() != "sqlite":
        return
    path = _sqlite_path(url)
    if path is None:
        return
    absolute = path.absolute()
    relative_hint = (
        "sqlite:///relative/path.db is relative to the current directory "
        f"({Path.cwd()}); use sqlite:////absolute/path.db for an absolute path"
    )
    if not path.exists():
        raise InputError(
            f"SQLite database file not found: {absolute} (from {masked})",
            hint=f"check the path; {relative_hint}",
        )
    if path.is_dir():
        raise InputError(
            f"SQLite database path is a directory, not a file: {absolute}",
            hint="point the URL at the .db/.sqlite file inside it",
        )
    if not os.access(path, os.R_OK):
        raise InputError(
            f"permission denied reading SQLite database file {absolute}",
            hint="make the file readable by the user running meshkit",
        )
