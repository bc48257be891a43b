"""Stage a SQL database table (or a SELECT) as a Parquet file, streaming.

DuckDB's ``sqlite``/``postgres`` extensions have to be downloaded, which our machines cannot do,
so a "database table" input port is read through SQLAlchemy and staged as Parquet for DuckDB to
scan. Rows are fetched ``batch_size`` at a time (a server-side cursor where the driver has one)
and every batch becomes one Parquet row group, so memory stays bounded by one batch.

The Arrow schema is decided before the first row is written:

* ``table=``: from the reflected column types (see ``_arrow_type_for``; the mapping is listed in
  the docs). All integer types become ``int64`` (SQLite integers are 64-bit anyway, and one
  width keeps joins across sources simple). A ``NUMERIC`` without a declared precision becomes
  ``float64``; columns whose type the database does not declare are inferred as for queries.
* ``query=``: from the driver's column types where they are meaningful (PostgreSQL type OIDs,
  including ``numeric(p, s)``), otherwise inferred from the Python values of the first batch;
  later batches are converted to that schema. A column that is entirely NULL in the first batch
  (or in an empty result) is staged as ``string``.

Every column is nullable in the staged file; the product's schema contract decides the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import difflib
import json
import os
import re
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url
from sqlalchemy.pool import NullPool

from meshkit.errors import InputError

__all__ = ["ExportResult", "export_table", "mask_url"]

URL_EXAMPLES = "expected e.g. sqlite:///path/to.db or postgresql+psycopg://user@host:5432/db"

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}

# The pip command that provides a missing DB-API module (``ImportError.name``).
_DRIVER_HINTS = {
    "psycopg": "pip install 'meshkit[postgres]'",
    "psycopg2": (
        "use a postgresql+psycopg:// URL (pip install 'meshkit[postgres]'), "
        "or pip install psycopg2-binary"
    ),
    "pymysql": "pip install pymysql",
    "MySQLdb": "pip install mysqlclient",
    "pyodbc": "pip install pyodbc",
    "pymssql": "pip install pymssql",
    "oracledb": "pip install oracledb",
}

# URL query parameters that carry secrets and are masked like the password.
_SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "sslpassword", "secret", "token"})

_QUERY_KEYWORDS = frozenset({"select", "with", "values", "table"})
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)

Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class ExportResult:
    """What ``export_table`` wrote: the Parquet file, its row count and column names."""

    path: Path
    rows: int
    columns: list[str]
    source: str
    """The masked URL plus ``/table`` (``/schema.table``) or ``[query]``."""


def mask_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``.

    Never raises: a URL SQLAlchemy cannot parse is masked textually (``user:***@``).
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)
    return _render_masked(parsed)


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
    masked = _render_masked(parsed)
    qualified = f"{schema}.{table}" if schema else str(table)
    source = f"{masked}/{qualified}" if table is not None else f"{masked}[query]"
    label = f"table {qualified!r}" if table is not None else "the query"
    _check_sqlite_file(parsed, masked)
    dest = Path(dest)
    _prepare_dest(dest)

    engine = _create_engine(parsed, masked)
    try:
        sink = _ParquetSink(dest)
        try:
            with _connect(engine, parsed, masked) as conn:
                _make_read_only(conn, parsed, masked)
                if table is not None:
                    result, plans = _execute_table(conn, parsed, masked, table, schema, batch_size)
                else:
                    assert query is not None
                    result, plans = _execute_query(conn, parsed, masked, query, batch_size)
                sink.begin(plans, label=label)
                _stream(result, sink, parsed, masked, label, batch_size)
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


def _render_masked(url: URL) -> str:
    secret_keys = [key for key in url.query if key.lower() in _SECRET_PARAMS]
    if secret_keys:
        url = url.update_query_dict(dict.fromkeys(secret_keys, "***"))
    return url.render_as_string(hide_password=True)


def _secrets(url: URL) -> list[str]:
    values: list[str] = []
    if url.password:
        values.append(str(url.password))
    for key, value in url.query.items():
        if key.lower() in _SECRET_PARAMS:
            values.extend([value] if isinstance(value, str) else list(value))
    return [v for v in values if v]


def _scrub(text: str, url: URL) -> str:
    """Remove every secret of ``url`` from ``text`` (driver messages are quoted in ours)."""
    from urllib.parse import quote, quote_plus

    for secret in sorted(_secrets(url), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return text


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


# --------------------------------------------------------------------------- engine/connection


def _create_engine(url: URL, masked: str) -> Engine:
    try:
        dialect_cls = url.get_dialect()
    except sa_exc.NoSuchModuleError:
        raise InputError(
            f"unknown database type {url.drivername!r} in URL {masked}",
            hint=URL_EXAMPLES,
        ) from None
    if getattr(dialect_cls, "is_async", False):
        raise InputError(
            f"asynchronous driver {url.drivername!r} is not supported (URL {masked})",
            hint="use a synchronous driver, e.g. postgresql+psycopg:// or sqlite:///",
        )
    connect_args: dict[str, Any] = {}
    driver = getattr(dialect_cls, "driver", "")
    if (
        url.get_backend_name() == "postgresql"
        and driver in ("psycopg", "psycopg2")
        and "connect_timeout" not in url.query
    ):
        connect_args["connect_timeout"] = 10
    try:
        with warnings.catch_warnings():
            # e.g. "query string argument(s) ... are not accepted by the driver"
            warnings.simplefilter("error", sa_exc.SAWarning)
            return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except sa_exc.SAWarning as exc:
        raise InputError(
            f"invalid database URL {masked}: {_scrub(str(exc), url)}",
            hint="remove or fix the URL's query parameters",
        ) from None
    except ImportError as exc:
        module = exc.name or str(exc)
        hint = _DRIVER_HINTS.get(module, f"pip install {module}")
        raise InputError(
            f"the database driver for {url.drivername!r} is not installed "
            f"(no module named {module!r})",
            hint=hint,
        ) from None
    except (sa_exc.ArgumentError, TypeError, ValueError) as exc:
        raise InputError(
            f"invalid database URL {masked}: {_scrub(str(exc), url)}", hint=URL_EXAMPLES
        ) from None


def _connect(engine: Engine, url: URL, masked: str) -> Connection:
    try:
        return engine.connect()
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, f"cannot connect to {masked}") from None
    except (TypeError, ValueError) as exc:  # the driver rejected an option from the URL
        raise InputError(
            f"cannot connect to {masked}: {_scrub(str(exc), url)}",
            hint="check the query parameters of the URL; the driver does not accept one of them",
        ) from None


def _make_read_only(conn: Connection, url: URL, masked: str) -> None:
    """Belt and braces for ``query``: the source database is never written to."""
    backend = url.get_backend_name()
    try:
        if backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif backend == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, f"cannot read {masked}") from None


def _host_port(url: URL) -> str:
    host = url.host or "localhost"
    port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
    return f"{host}:{port}" if port else host


def _db_error(
    exc: sa_exc.DBAPIError, url: URL, masked: str, doing: str, *, table: str | None = None
) -> InputError:
    """Translate a driver error into an ``InputError`` with a hint; no secrets in the text."""
    orig = exc.orig
    text = _scrub(str(orig) if orig is not None else str(exc), url).strip()
    first = text.splitlines()[0].strip() if text else type(orig).__name__
    low = text.lower()
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    where = _host_port(url)
    user = url.username or "<user>"

    if "connection refused" in low:
        return InputError(
            f"cannot connect to {where}: connection refused ({masked})",
            hint=f"is the database server running and listening on {where}? "
            "check the host and port in the URL",
        )
    if any(
        s in low
        for s in (
            "could not translate host name",
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "no address associated",
        )
    ):
        return InputError(
            f"cannot connect to {where}: unknown host {url.host!r} ({masked})",
            hint="check the spelling of the host name and your DNS/VPN",
        )
    if "timeout expired" in low or "timed out" in low:
        return InputError(
            f"cannot connect to {where}: the connection timed out ({masked})",
            hint="check that the host is reachable from this machine (firewall, VPN)",
        )
    if code in ("28P01", "28000") or any(
        s in low
        for s in ("authentication failed", "no password supplied", "access denied for user")
    ):
        return InputError(
            f"{doing}: authentication failed for user {user!r}",
            hint="check the user name and password; keep the password out of spec files",
        )
    if code == "3D000" or re.search(r"database \S+ does not exist", low):
        return InputError(
            f"{doing}: the database {url.database!r} does not exist on {where}",
            hint="check the database name at the end of the URL",
        )
    if code == "42501" or "permission denied" in low or "access denied" in low:
        target = table or "the tables in the query"
        return InputError(
            f"{doing}: permission denied: {first}",
            hint=f"ask the owner to GRANT SELECT ON {target} TO {user}, or use another user",
        )
    if code == "25006" or any(
        s in low for s in ("read-only transaction", "readonly database", "data-modifying")
    ):
        return InputError(
            f"{doing}: the query tries to modify the database ({first})",
            hint="input queries are read-only: write a plain SELECT",
        )
    if "file is not a database" in low:
        return InputError(
            f"{doing}: the file is not a SQLite database",
            hint="check that the URL points at a SQLite database file",
        )
    if "unable to open database file" in low:
        return InputError(
            f"{doing}: SQLite cannot open the database file",
            hint="check the path and the permissions of the file and its directory",
        )
    if code == "42601" or "syntax error" in low:
        return InputError(
            f"{doing}: {first}",
            hint="the query runs as-is on the source database, so write it in its SQL dialect",
        )
    if code in ("42P01", "42703", "42883") or any(
        s in low for s in ("no such table", "no such column", "does not exist", "no such function")
    ):
        return InputError(
            f"{doing}: {first}",
            hint="check the table and column names the query uses against the source database",
        )
    return InputError(
        f"{doing}: {first}",
        hint="check the URL, and the query if there is one, against the source database",
    )


# --------------------------------------------------------------------------- reading


@dataclass
class _Plan:
    """How one column is staged: its Arrow type (None: infer from the first batch)."""

    name: str
    arrow: pa.DataType | None
    convert: Convert | None
    sql_type: str


def _execute_table(
    conn: Connection, url: URL, masked: str, table: str, schema: str | None, batch_size: int
) -> tuple[CursorResult[Any], list[_Plan]]:
    qualified = f"{schema}.{table}" if schema else table
    doing = f"cannot read table {qualified!r} from {masked}"
    if schema is not None:
        _check_schema(conn, url, masked, schema)
    try:
        with warnings.catch_warnings():
            # Unknown column types (extensions, domains) reflect as NullType; we infer those.
            warnings.filterwarnings("ignore", category=sa_exc.SAWarning)
            reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
    except sa_exc.NoSuchTableError:
        raise _unknown_table(conn, url, masked, table, schema) from None
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, doing, table=qualified) from None

    plans = [_plan_for_sql_type(column.name, column.type) for column in reflected.columns]
    statement = sa.select(*reflected.columns)
    options = conn.execution_options(stream_results=True, yield_per=batch_size)
    try:
        result = options.execute(statement)
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, doing, table=qualified) from None
    return result, plans


def _check_schema(conn: Connection, url: URL, masked: str, schema: str) -> None:
    try:
        schemas = sa.inspect(conn).get_schema_names()
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, f"cannot list the schemas of {masked}") from None
    if schema not in schemas:
        raise InputError(
            f"schema {schema!r} not found in {masked}",
            hint=_did_you_mean(schema, schemas, "schemas"),
        )


def _unknown_table(
    conn: Connection, url: URL, masked: str, table: str, schema: str | None
) -> InputError:
    inspector = sa.inspect(conn)
    try:
        names = sorted(
            set(inspector.get_table_names(schema=schema))
            | set(inspector.get_view_names(schema=schema))
        )
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, f"cannot list the tables of {masked}") from None
    where = f"schema {schema!r} of {masked}" if schema else masked
    if not names:
        return InputError(
            f"table {table!r} not found: {where} has no tables",
            hint="is this the right database (or schema)?",
        )
    hint = _did_you_mean(table, names, "tables")
    if "." in table and schema is None:
        left, _, right = table.partition(".")
        hint = f"to read table {right!r} in schema {left!r}, set schema: {left}; {hint}"
    return InputError(f"table {table!r} not found in {where}", hint=hint)


def _did_you_mean(name: str, candidates: Sequence[str], noun: str) -> str:
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    shown = ", ".join(candidates[:20]) + (
        f", ... ({len(candidates) - 20} more)" if len(candidates) > 20 else ""
    )
    listing = f"{noun}: {shown}" if candidates else f"there are no {noun}"
    if close:
        suggestions = " or ".join(repr(by_lower[c]) for c in close)
        return f"did you mean {suggestions}? {listing}"
    return listing


def _execute_query(
    conn: Connection, url: URL, masked: str, query: str, batch_size: int
) -> tuple[CursorResult[Any], list[_Plan]]:
    sql = query.strip().rstrip(";").strip()
    keyword = _first_keyword(sql)
    if keyword not in _QUERY_KEYWORDS:
        shown = keyword.upper() or "nothing"
        raise InputError(
            f"a database input's query must be a SELECT, got {shown}",
            hint="write `query: SELECT ... FROM ...`, or use `table:` to read a whole table",
        )
    options = conn.execution_options(stream_results=True, yield_per=batch_size, no_parameters=True)
    try:
        # Sent to the driver untouched: no bind-parameter parsing of `:name` or `%`.
        # yield_per is not applied to driver SQL by the execution option alone: set it here.
        result = options.exec_driver_sql(sql).yield_per(batch_size)
    except sa_exc.DBAPIError as exc:
        raise _db_error(exc, url, masked, f"the query failed on {masked}") from None
    if not result.returns_rows:
        result.close()
        raise InputError(
            "the database input's query returned no result set",
            hint="write a single SELECT statement",
        )
    names = list(result.keys())
    description = result.cursor.description or ()
    plans: list[_Plan] = []
    pg = conn.dialect.name == "postgresql" and conn.dialect.driver in ("psycopg", "psycopg2")
    for index, name in enumerate(names):
        entry = description[index] if index < len(description) else None
        if pg and entry is not None:
            plans.append(_plan_for_pg_oid(name, entry))
        else:
            plans.append(_Plan(name, None, None, "?"))
    return result, plans


def _first_keyword(sql: str) -> str:
    """The statement's first keyword, lower-cased, after comments and opening parentheses."""
    position = 0
    while True:
        noise = _LEADING_NOISE.match(sql, position)
        if noise is None or noise.end() == position:
            break
        position = noise.end()
    match = re.compile(r"[A-Za-z]+").match(sql, position)
    return match.group(0).lower() if match else ""


def _stream(
    result: CursorResult[Any],
    sink: _ParquetSink,
    url: URL,
    masked: str,
    label: str,
    batch_size: int,
) -> None:
    partitions = result.partitions(batch_size)
    try:
        while True:
            try:
                rows = next(partitions, None)
            except sa_exc.DBAPIError as exc:
                raise _db_error(exc, url, masked, f"cannot read {label} from {masked}") from None
            except (ValueError, TypeError, OverflowError) as exc:
                # A value the column's type cannot parse (SQLite stores dates as free text).
                raise InputError(
                    f"cannot read {label} from {masked}: after {sink.rows} rows, "
                    f"a value could not be decoded: {exc}",
                    hint="fix the stored value, or read it as text with a query and CAST",
                ) from None
            if rows is None:
                break
            sink.write(rows)
    finally:
        result.close()


# --------------------------------------------------------------------------- type mapping


def _plan_for_sql_type(name: str, sql_type: sa.types.TypeEngine[Any]) -> _Plan:
    arrow, convert = _arrow_type_for(sql_type)
    try:
        shown = repr(sql_type)
    except Exception:  # pragma: no cover - exotic third-party types
        shown = type(sql_type).__name__
    return _Plan(name, arrow, convert, shown)


def _arrow_type_for(
    sql_type: sa.types.TypeEngine[Any],
) -> tuple[pa.DataType | None, Convert | None]:
    """The Arrow type (None: infer) and value converter for a SQLAlchemy column type."""
    if isinstance(sql_type, sa.types.TypeDecorator):
        return _arrow_type_for(sql_type.impl_instance)
    if isinstance(sql_type, sa.types.NullType):
        return None, None
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_(), None
    if isinstance(sql_type, sa.Integer):  # Integer, BigInteger, SmallInteger
        return pa.int64(), None
    if isinstance(sql_type, sa.Float):  # before Numeric: Float subclasses it
        return pa.float64(), _to_float
    if isinstance(sql_type, sa.Numeric):
        if sql_type.precision is None or not sql_type.asdecimal:
            return pa.float64(), _to_float
        return _decimal_type(sql_type.precision, sql_type.scale or 0)
    if isinstance(sql_type, sa.DateTime):
        tz = "UTC" if sql_type.timezone else None
        return pa.timestamp("us", tz=tz), None
    if isinstance(sql_type, sa.Date):
        return pa.date32(), None
    if isinstance(sql_type, sa.Time):
        if sql_type.timezone:  # Arrow times have no zone
            return pa.string(), _to_text
        return pa.time64("us"), None
    if isinstance(sql_type, sa.LargeBinary | sa.BINARY | sa.VARBINARY):
        return pa.binary(), _to_bytes
    if isinstance(sql_type, sa.JSON):
        return pa.string(), _to_json
    if isinstance(sql_type, sa.Uuid | sa.String):  # String covers Text, Unicode, Enum
        return pa.string(), _to_text
    return pa.string(), _to_text


def _decimal_type(precision: int, scale: int) -> tuple[pa.DataType, Convert | None]:
    if 0 <= scale <= precision <= 38 and precision > 0:
        return pa.decimal128(precision, scale), None
    if 0 <= scale <= precision <= 76 and precision > 0:
        return pa.decimal256(precision, scale), None
    return pa.string(), _to_text  # beyond Arrow's decimals (PostgreSQL allows 1000 digits)


# PostgreSQL type OIDs (psycopg / psycopg2 ``cursor.description[i].type_code``); ``numeric``
# (1700) is handled separately because its precision and scale come with the description.
_PG_OIDS: dict[int, pa.DataType] = {
    16: pa.bool_(),  # bool
    17: pa.binary(),  # bytea
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),  # int8
    21: pa.int64(),  # int2
    23: pa.int64(),  # int4
    26: pa.int64(),  # oid
    25: pa.string(),  # text
    1042: pa.string(),  # bpchar
    1043: pa.string(),  # varchar
    114: pa.string(),  # json
    3802: pa.string(),  # jsonb
    700: pa.float64(),  # float4
    701: pa.float64(),  # float8
    1082: pa.date32(),  # date
    1083: pa.time64("us"),  # time
    1266: pa.string(),  # timetz
    1114: pa.timestamp("us"),  # timestamp
    1184: pa.timestamp("us", tz="UTC"),  # timestamptz
    2950: pa.string(),  # uuid
    1186: pa.string(),  # interval
}
_PG_NUMERIC = 1700
_PG_JSON = frozenset({114, 3802})


def _plan_for_pg_oid(name: str, entry: Any) -> _Plan:
    oid = entry[1]
    if oid == _PG_NUMERIC:
        precision, scale = entry[4], entry[5]
        if isinstance(precision, int) and isinstance(scale, int):
            decimal_type, to_decimal = _decimal_type(precision, scale)
            return _Plan(name, decimal_type, to_decimal, f"numeric({precision},{scale})")
        return _Plan(name, pa.float64(), _to_float, "numeric")
    if oid in _PG_OIDS:
        arrow = _PG_OIDS[oid]
        convert: Convert | None
        if oid in _PG_JSON:
            convert = _to_json
        elif arrow == pa.binary():
            convert = _to_bytes
        elif arrow == pa.string():
            convert = _to_text
        elif arrow == pa.float64():
            convert = _to_float
        else:
            convert = None
        return _Plan(name, arrow, convert, f"oid {oid}")
    return _Plan(name, None, None, f"oid {oid}")  # arrays, enums, extensions: infer


def _infer(values: Sequence[Any]) -> tuple[pa.DataType, Convert | None]:
    """Arrow type for a column with no usable SQL type, from its values in the first batch."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string(), _to_text
    if kinds == {bool}:
        return pa.bool_(), None
    if all(k is not bool and issubclass(k, int) for k in kinds):
        return pa.int64(), None
    if all(k is not bool and issubclass(k, int | float) for k in kinds):
        return pa.float64(), _to_float
    if all(k is not bool and issubclass(k, int | decimal.Decimal) for k in kinds):
        scale = 0
        for v in values:
            if isinstance(v, decimal.Decimal):
                if not v.is_finite():
                    return pa.float64(), _to_float
                exponent = v.as_tuple().exponent
                if isinstance(exponent, int):
                    scale = max(scale, -exponent)
        return pa.decimal128(38, min(scale, 38)), None
    if all(issubclass(k, str) for k in kinds):
        return pa.string(), _to_text
    if all(issubclass(k, bytes | bytearray | memoryview) for k in kinds):
        return pa.binary(), _to_bytes
    if all(issubclass(k, dt.datetime) for k in kinds):
        aware = any(v is not None and v.tzinfo is not None for v in values)
        return pa.timestamp("us", tz="UTC" if aware else None), None
    if all(issubclass(k, dt.date) and not issubclass(k, dt.datetime) for k in kinds):
        return pa.date32(), None
    if all(issubclass(k, dt.time) for k in kinds) and all(
        v is None or v.tzinfo is None for v in values
    ):
        return pa.time64("us"), None
    return pa.string(), _to_text  # mixed or exotic values: text, as str()/JSON


def _to_float(value: Any) -> Any:
    return float(value) if isinstance(value, decimal.Decimal) else value


def _to_bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray | memoryview) else value


def _to_json(value: Any) -> Any:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _to_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)  # UUID, Decimal, timedelta, enums, extension types


# --------------------------------------------------------------------------- writing


class _ParquetSink:
    """Writes batches to a temporary file next to ``dest``; ``commit`` moves it into place."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
        self.rows = 0
        self.columns: list[str] = []
        self._plans: list[_Plan] = []
        self._label = ""
        self._writer: Any = None
        self._schema: Any = None

    def begin(self, plans: list[_Plan], *, label: str) -> None:
        names = [p.name for p in plans]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InputError(
                f"{label} returns more than one column named {', '.join(map(repr, duplicates))}",
                hint="give the columns distinct names with AS in the query",
            )
        self._plans = plans
        self.columns = names
        self._label = label

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        if self._writer is None:
            self._open(columns)
        arrays = [
            self._array(plan, field.type, values)
            for plan, field, values in zip(self._plans, self._schema, columns, strict=True)
        ]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self._schema)
        try:
            self._writer.write_batch(batch)
        except OSError as exc:
            raise self._write_error(exc) from None
        self.rows += len(rows)

    def commit(self) -> None:
        if self._writer is None:  # empty result: still a valid file with the schema
            self._open([[] for _ in self._plans])
        try:
            self._writer.close()
            self._writer = None
            os.replace(self.tmp, self.dest)
        except OSError as exc:
            raise self._write_error(exc) from None

    def discard(self) -> None:
        """Clean up after a failure (a no-op after ``commit``)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # already failing: keep the first error
                self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)

    def _open(self, first_columns: Sequence[Sequence[Any]]) -> None:
        fields = []
        for plan, values in zip(self._plans, first_columns, strict=True):
            if plan.arrow is None:
                plan.arrow, plan.convert = _infer(values)
            fields.append(pa.field(plan.name, plan.arrow, nullable=True))
        self._schema = pa.schema(fields)
        try:
            self._writer = pq.ParquetWriter(str(self.tmp), self._schema)
        except OSError as exc:
            raise self._write_error(exc) from None

    def _array(self, plan: _Plan, arrow: pa.DataType, values: Sequence[Any]) -> Any:
        try:
            converted = [plan.convert(v) for v in values] if plan.convert else values
            return pa.array(converted, type=arrow)
        except (pa.ArrowException, ValueError, TypeError, OverflowError, ArithmeticError):
            pass
        for offset, value in enumerate(values):  # find the culprit for the message
            try:
                pa.array([plan.convert(value) if plan.convert else value], type=arrow)
            except (pa.ArrowException, ValueError, TypeError, OverflowError, ArithmeticError):
                shown = repr(value)
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                raise InputError(
                    f"{self._label}, column {plan.name!r}: row {self.rows + offset + 1} holds "
                    f"{shown} ({type(value).__name__}), which does not fit the column's type "
                    f"{arrow} (from {plan.sql_type})",
                    hint="fix the value at the source, or read the column through a query that "
                    "CASTs it to one type (SQLite lets a column hold mixed types)",
                ) from None
        raise InputError(  # pragma: no cover - every value converted alone but not together
            f"{self._label}, column {plan.name!r}: values do not fit the column's type {arrow}",
            hint="read the column through a query that CASTs it to one type",
        )

    def _write_error(self, exc: OSError) -> InputError:
        return InputError(
            f"cannot write the staged Parquet file {self.dest}: {exc.strerror or exc}",
            hint="check free disk space and the permissions of the staging directory",
        )


def _prepare_dest(dest: Path) -> None:
    if dest.is_dir():
        raise InputError(
            f"the staging destination {dest} is a directory",
            hint="pass a file path such as staging/orders.parquet",
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the staging directory {dest.parent}: {exc.strerror or exc}",
            hint="check the permissions of the parent directories",
        ) from None
