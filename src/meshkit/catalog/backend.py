"""The catalog's database: its URL, engine, sessions and migrations, and its errors.

``Backend`` is what every repository is given. It parses and checks the URL (SQLite or
PostgreSQL), creates the engine (SQLite tuned for several processes sharing one file), brings
the schema to the newest migration on opening, and hands out short transactions whose
database failures surface as ``CatalogError`` with a hint for the backend in use. The SQL
helpers at the bottom are the dialect-aware statements the repositories share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic.util.exc import CommandError
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from meshkit.catalog.migrate import upgrade_to_head
from meshkit.catalog.models import Base
from meshkit.errors import CatalogError
from meshkit.urls import mask_password

# How long a SQLite writer waits for another process's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
POSTGRES_CONNECT_TIMEOUT_S: Final = 10

SUPPORTED_BACKENDS: Final = ("sqlite", "postgresql")
URL_EXAMPLES: Final = "sqlite:///path/to/catalog.db or postgresql+psycopg://user@host:5432/dbname"
# Execution option marking read-only sessions, so SQLite can start them without a write lock.
_READ_ONLY: Final = "meshkit_read_only"


class Backend:
    """One catalog database, opened (created if needed) and migrated to the current schema.

    Every ``session`` is its own short transaction, so a long build never holds a lock on the
    catalog and two processes (two builds, or a build and the CLI) can share one SQLite file.
    """

    def __init__(self, url: str) -> None:
        self.url = mask_password(url)
        """The URL with any password masked: safe to show."""
        parsed = _parse_url(url, self.url)
        self.name = parsed.get_backend_name()
        """``sqlite`` or ``postgresql``."""
        try:
            if self.name == "sqlite":
                _ensure_sqlite_directory(parsed)
            self._engine = _create_engine(parsed)
        except (SQLAlchemyError, ImportError, OSError) as exc:
            raise self._open_error(exc) from exc
        self._read_engine = self._engine.execution_options(**{_READ_ONLY: True})
        self._closed = False
        try:
            with self._engine.begin() as connection:
                upgrade_to_head(connection)
        except CatalogError as exc:
            self._engine.dispose()
            raise CatalogError(
                f"cannot open the catalog at {self.url}: {exc.message}", hint=exc.step or exc.hint
            ) from exc
        except (SQLAlchemyError, CommandError, ImportError, OSError) as exc:
            self._engine.dispose()
            raise self._open_error(exc) from exc

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release every pooled connection (SQLite files stay open until this is called)."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One short transaction; database failures surface as ``CatalogError``.

        Read sessions (``write=False``) never take SQLite's write lock.
        """
        if self._closed:
            raise RuntimeError(f"Catalog({self.url!r}) is closed")
        engine = self._engine if write else self._read_engine
        try:
            with Session(engine) as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog at {self.url}: {_reason(exc)}", hint=self.hint()) from exc

    def hint(self) -> str:
        """What to check when this database cannot be opened or used."""
        if self.name == "sqlite":
            return (
                "check that the directory is writable and the file is a meshkit catalog "
                "(a SQLite database), not some other file"
            )
        if self.name == "postgresql":
            return (
                "check that the server is running and reachable, that the database exists, "
                "that the credentials are right and that the user may create tables; "
                "the PostgreSQL driver comes with `pip install 'meshkit[postgres]'`"
            )
        return f"use a URL like {URL_EXAMPLES}"  # pragma: no cover - refused by _parse_url

    def _open_error(self, exc: BaseException) -> CatalogError:
        return CatalogError(
            f"cannot open the catalog at {self.url}: {_reason(exc)}", hint=self.hint()
        )

    def __repr__(self) -> str:
        return f"Backend({self.url!r})"


# -- engine setup ------------------------------------------------------------------------------


def _parse_url(url: str, masked: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(
            f"cannot open the catalog at {masked}: not a database URL",
            hint=f"use a URL like {URL_EXAMPLES}",
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise CatalogError(
            f"cannot open the catalog at {masked}: {backend!r} databases are not supported",
            hint=f"the catalog runs on SQLite or PostgreSQL; use a URL like {URL_EXAMPLES}",
        )
    return parsed


def _ensure_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or url.query.get("uri") == "true":
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Configure each new SQLite connection for several processes sharing one file.

    WAL lets readers proceed while a build writes; the busy timeout makes a second writer wait
    instead of failing at once; and taking transaction control away from the sqlite3 module
    lets ``_sqlite_on_begin`` choose the kind of BEGIN.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    """Start writers with BEGIN IMMEDIATE so they queue on the busy timeout.

    A deferred transaction that reads and then writes cannot wait for the lock (SQLite would
    risk a deadlock) and fails with "database is locked" straight away; taking the write lock
    up front avoids that. Read-only sessions keep a plain BEGIN and never block anyone in WAL.
    """
    read_only = bool(connection.get_execution_options().get(_READ_ONLY, False))
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _reason(exc: BaseException) -> str:
    """The first line of the underlying driver's message, without SQL or links to docs."""
    source: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        source = exc.orig
    lines = [line.strip() for line in str(source).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(source).__name__
    return mask_password(text)


# -- SQL the repositories share ----------------------------------------------------------------


def dialect_insert(s: Session, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """A dialect INSERT, for its ON CONFLICT clause (both supported backends have one)."""
    if s.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def upsert(s: Session, model: type[Base], values: dict[str, Any], *, keys: Sequence[str]) -> None:
    """INSERT .. ON CONFLICT DO UPDATE: atomic, so concurrent builds registering the same
    domain cannot both see it missing and then collide on the primary key."""
    upsert_many(s, model, [values], keys=keys)


def upsert_many(
    s: Session, model: type[Base], rows: Sequence[dict[str, Any]], *, keys: Sequence[str]
) -> None:
    """`upsert` of many rows (all with the same columns) in one executemany."""
    stmt = dialect_insert(s, model)
    updates = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
    s.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates), list(rows))
