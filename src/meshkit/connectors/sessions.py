"""Connecting to a source database: the SQLAlchemy engine, read-only sessions, hinted errors.

Every error a user can cause (a missing driver, an unreachable server, a wrong password, a
missing privilege) becomes an `InputError` whose hint says what to check; no secret of the URL
reaches the message (`scrub`).
"""

from __future__ import annotations

import re
import warnings
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from meshkit.errors import InputError
from meshkit.urls import secrets

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


def scrub(text: str, url: URL) -> str:
    """Remove every secret of ``url`` from ``text`` (driver messages are quoted in ours)."""
    for secret in sorted(secrets(url), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            text = text.replace(form, "***")
    return text


def create_engine(url: URL, masked: str) -> Engine:
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
            f"invalid database URL {masked}: {scrub(str(exc), url)}",
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
            f"invalid database URL {masked}: {scrub(str(exc), url)}", hint=URL_EXAMPLES
        ) from None


def connect(engine: Engine, url: URL, masked: str) -> Connection:
    try:
        return engine.connect()
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, f"cannot connect to {masked}") from None
    except (TypeError, ValueError) as exc:  # the driver rejected an option from the URL
        raise InputError(
            f"cannot connect to {masked}: {scrub(str(exc), url)}",
            hint="check the query parameters of the URL; the driver does not accept one of them",
        ) from None


def make_read_only(conn: Connection, url: URL, masked: str) -> None:
    """Belt and braces for ``query``: the source database is never written to."""
    backend = url.get_backend_name()
    try:
        if backend == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif backend == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
    except sa_exc.DBAPIError as exc:
        raise db_error(exc, url, masked, f"cannot read {masked}") from None


def _host_port(url: URL) -> str:
    host = url.host or "localhost"
    port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
    return f"{host}:{port}" if port else host


def db_error(
    exc: sa_exc.DBAPIError, url: URL, masked: str, doing: str, *, table: str | None = None
) -> InputError:
    """Translate a driver error into an ``InputError`` with a hint; no secrets in the text."""
    orig = exc.orig
    text = scrub(str(orig) if orig is not None else str(exc), url).strip()
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
