"""``Catalog``: the one way the rest of meshkit reads and writes the catalog database.

Every method is its own short transaction, so a long build never holds a lock on the catalog
and two processes (two builds, or a build and the CLI) can share one SQLite file. Reads return
frozen records from ``records.py``; ORM objects never leave this module.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from uuid import uuid4

from alembic.util.exc import CommandError
from sqlalchemy import URL, Engine, create_engine, delete, event, func, make_url, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from meshkit.catalog.access import AccessRecords
from meshkit.catalog.audit import AuditRecords
from meshkit.catalog.governance import GovernanceRecords
from meshkit.catalog.migrate import upgrade_to_head
from meshkit.catalog.models import (
    Base,
    Domain,
    LineageEdge,
    Product,
    ProductVersion,
    QualityResult,
    Run,
    utcnow,
)
from meshkit.catalog.records import (
    DomainRecord,
    LineageRecord,
    ProductRecord,
    QualityRecord,
    RunRecord,
    VersionRecord,
    jsonable,
)
from meshkit.catalog.rows import ProductRow
from meshkit.errors import CatalogError, NotFoundError
from meshkit.urls import mask_password

RUN_STATUSES: Final = frozenset({"running", "success", "failed", "blocked", "conflict"})
FINISHED_STATUSES: Final = RUN_STATUSES - {"running"}
SEVERITIES: Final = frozenset({"error", "warning"})
SOURCE_KINDS: Final = frozenset({"product", "file", "database"})

# How long a SQLite writer waits for another process's write to finish before giving up.
SQLITE_BUSY_TIMEOUT_S: Final = 30.0
POSTGRES_CONNECT_TIMEOUT_S: Final = 10

_SUPPORTED_BACKENDS: Final = ("sqlite", "postgresql")
_URL_EXAMPLES: Final = "sqlite:///path/to/catalog.db or postgresql+psycopg://user@host:5432/dbname"
# Execution option marking read-only sessions, so SQLite can start them without a write lock.
_READ_ONLY: Final = "meshkit_read_only"


class Catalog(GovernanceRecords, AccessRecords, AuditRecords):
    """The catalog database: domains, products, versions, runs, quality results and lineage.

    Opening a catalog creates it if needed and migrates it to the current schema.
    """

    def __init__(self, url: str) -> None:
        self.url = mask_password(url)
        """The URL with any password masked: safe to show."""
        parsed = _parse_url(url, self.url)
        self._backend = parsed.get_backend_name()
        try:
            if self._backend == "sqlite":
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
                f"cannot open the catalog at {self.url}: {exc.message}", hint=exc.hint
            ) from exc
        except (SQLAlchemyError, CommandError, ImportError, OSError) as exc:
            self._engine.dispose()
            raise self._open_error(exc) from exc

    @classmethod
    def for_url(cls, url: str) -> Catalog:
        """Open the catalog at ``url``; the spelling callers use so tests can substitute one."""
        return cls(url)

    def close(self) -> None:
        """Release every pooled connection (SQLite files stay open until this is called)."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.url!r})"

    # -- writes ------------------------------------------------------------------------------

    def upsert_domain(
        self, *, name: str, description: str, type: str, owner_team: str, spec: dict[str, Any]
    ) -> None:
        values = {
            "name": name,
            "description": description,
            "type": type,
            "owner_team": owner_team,
            "spec": jsonable(spec),
            "updated_at": utcnow(),
        }
        with self._session(write=True) as s:
            _upsert(s, Domain, values, keys=("name",))

    def upsert_product(
        self,
        *,
        id: str,
        domain: str,
        name: str,
        version: str,
        status: str,
        description: str,
        tags: list[str],
        owners: dict[str, Any],
        spec: dict[str, Any],
        spec_hash: str,
    ) -> None:
        self.upsert_products(
            [
                ProductRow(
                    id=id,
                    domain=domain,
                    name=name,
                    version=version,
                    status=status,
                    description=description,
                    tags=tags,
                    owners=owners,
                    spec=spec,
                    spec_hash=spec_hash,
                )
            ]
        )

    def upsert_products(self, rows: Sequence[ProductRow]) -> None:
        """Register or update products, all in one transaction."""
        now = utcnow()
        with self._session(write=True) as s:
            for domain in sorted({row.domain for row in rows}):
                if s.get(Domain, domain) is None:
                    first = next(row.id for row in rows if row.domain == domain)
                    raise NotFoundError(
                        f"cannot register product {first!r}: domain {domain!r} is not in the catalog",
                        hint="register the domain before its products",
                    )
            values = [
                {
                    **{f.name: getattr(row, f.name) for f in dataclasses.fields(row)},
                    "tags": [str(tag) for tag in row.tags],
                    "owners": jsonable(row.owners),
                    "spec": jsonable(row.spec),
                    "updated_at": now,
                }
                for row in rows
            ]
            if values:
                _upsert_many(s, Product, values, keys=("id",))

    def start_run(
        self, *, product_id: str, spec_hash: str, host: str | None = None, pid: int | None = None
    ) -> str:
        """Record that a build of ``product_id`` started (in process ``pid`` on ``host``)."""
        run_id = uuid4().hex
        with self._session(write=True) as s:
            s.add(
                Run(
                    id=run_id,
                    product_id=product_id,
                    status="running",
                    started_at=utcnow(),
                    finished_at=None,
                    timings={},
                    error=None,
                    spec_hash=spec_hash,
                    row_count=None,
                    delta_version=None,
                    host=host,
                    pid=pid,
                )
            )
        return run_id

    def abandon_runs(self, product_id: str, *, host: str, dead: Callable[[int], bool]) -> list[str]:
        """Mark as failed the runs of ``product_id`` still 'running' whose process on ``host``
        is gone (``dead(pid)``): killed builds never finish their own row. Returns their ids."""
        abandoned: list[str] = []
        with self._session(write=True) as s:
            running = s.scalars(
                select(Run).where(
                    Run.product_id == product_id, Run.status == "running", Run.host == host
                )
            ).all()
            for run in running:
                if run.pid is None or not dead(run.pid):
                    continue
                published = s.scalars(
                    select(ProductVersion.delta_version).where(ProductVersion.run_id == run.id)
                ).first()
                run.finished_at = utcnow()
                if published is not None:  # died after its commit: the version is real
                    run.status = "success"
                    run.delta_version = published
                    run.error = (
                        f"the build process (pid {run.pid} on {host}) ended after publishing "
                        f"version {published}; its run was completed from the table's history"
                    )
                else:
                    run.status = "failed"
                    run.error = (
                        f"the build process (pid {run.pid} on {host}) ended before finishing; "
                        "nothing it staged was published"
                    )
                abandoned.append(run.id)
        return abandoned

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        timings: dict[str, float],
        error: str | None = None,
        row_count: int | None = None,
        delta_version: int | None = None,
    ) -> None:
        _check_choice("run status", status, FINISHED_STATUSES)
        with self._session(write=True) as s:
            run = self._get_run(s, run_id)
            run.status = status
            run.finished_at = utcnow()
            run.timings = {str(stage): float(seconds) for stage, seconds in timings.items()}
            run.error = error
            run.row_count = row_count
            run.delta_version = delta_version

    def record_quality(self, run_id: str, results: Sequence[QualityRecord]) -> None:
        for result in results:
            _check_choice("severity", result.severity, SEVERITIES)
        now = utcnow()
        with self._session(write=True) as s:
            self._get_run(s, run_id)
            s.add_all(
                QualityResult(
                    run_id=run_id,
                    check_name=r.check_name,
                    check_type=r.check_type,
                    column=r.column,
                    severity=r.severity,
                    passed=bool(r.passed),
                    measured=jsonable(r.measured),
                    threshold=jsonable(r.threshold),
                    message=r.message,
                    samples=jsonable(list(r.samples)),
                    recorded_at=now,
                )
                for r in results
            )

    def record_version(
        self,
        *,
        product_id: str,
        semver: str,
        spec_hash: str,
        schema: list[dict[str, Any]],
        delta_version: int,
        row_count: int,
        run_id: str,
        published_at: datetime | None = None,
    ) -> None:
        """Record a published version; re-recording the same Delta version overwrites it."""
        values = {
            "product_id": product_id,
            "semver": semver,
            "spec_hash": spec_hash,
            "schema": jsonable(schema),
            "delta_version": delta_version,
            "row_count": row_count,
            "run_id": run_id,
            "published_at": published_at or utcnow(),
        }
        with self._session(write=True) as s:
            if s.get(Product, product_id) is None:
                raise NotFoundError(
                    f"cannot record a version of {product_id!r}: it is not in the catalog",
                    hint="register the product before publishing it",
                )
            self._get_run(s, run_id)
            _upsert(s, ProductVersion, values, keys=("product_id", "delta_version"))

    def import_run(
        self,
        run_id: str,
        *,
        product_id: str,
        spec_hash: str,
        finished_at: datetime,
        delta_version: int,
        row_count: int,
    ) -> bool:
        """Record a successful run known only from a table's history (the catalog was new,
        replaced or restored after it). Returns False if the run was already known."""
        with self._session(write=True) as s:
            if s.get(Run, run_id) is not None:
                return False
            s.add(
                Run(
                    id=run_id,
                    product_id=product_id,
                    status="success",
                    started_at=finished_at,
                    finished_at=finished_at,
                    timings={},
                    error="recorded from the table's history: this catalog has no record of the run",
                    spec_hash=spec_hash,
                    row_count=row_count,
                    delta_version=delta_version,
                    host=None,
                    pid=None,
                )
            )
        return True

    def set_lineage(self, target: str, sources: Sequence[tuple[str, str]]) -> None:
        """Replace every edge into ``target`` with ``sources`` (``(source_kind, source)`` pairs).

        Passwords in database URLs are masked before anything is stored.
        """
        edges: dict[tuple[str, str], None] = {}
        for kind, source in sources:
            _check_choice("lineage source kind", kind, SOURCE_KINDS)
            edges[(kind, mask_password(source))] = None
        now = utcnow()
        with self._session(write=True) as s:
            s.execute(delete(LineageEdge).where(LineageEdge.target == target))
            if edges:
                rows = [
                    {"target": target, "source_kind": k, "source": src, "updated_at": now}
                    for k, src in edges
                ]
                # DO NOTHING: a concurrent writer replacing the same target's edges may have
                # committed identical rows since our delete; either copy is correct.
                s.execute(_insert(s, LineageEdge).values(rows).on_conflict_do_nothing())

    # -- reads -------------------------------------------------------------------------------

    def domains(self) -> list[DomainRecord]:
        with self._session() as s:
            return [_domain_record(d) for d in s.scalars(select(Domain).order_by(Domain.name))]

    def products(
        self, *, domain: str | None = None, search: str | None = None
    ) -> list[ProductRecord]:
        """Products sorted by id; ``search`` matches id, description or tags, ignoring case."""
        query = select(Product).order_by(Product.id)
        if domain is not None:
            query = query.where(Product.domain == domain)
        with self._session() as s:
            found = [_product_record(p) for p in s.scalars(query)]
        if search:
            # Filtered here rather than in SQL: tags are a JSON list, which SQLite and
            # PostgreSQL search differently, and a catalog holds hundreds of products, not
            # millions.
            needle = search.casefold()
            found = [p for p in found if _matches(p, needle)]
        return found

    def product(self, product_id: str) -> ProductRecord:
        with self._session() as s:
            found = s.get(Product, product_id)
            if found is not None:
                return _product_record(found)
            known = list(s.scalars(select(Product.id)))
        raise NotFoundError(
            f"no product {product_id!r} in the catalog", hint=_suggest(product_id, known)
        )

    def versions(self, product_id: str) -> list[VersionRecord]:
        """Published versions of ``product_id``, newest first (empty if it never published)."""
        query = (
            select(ProductVersion)
            .where(ProductVersion.product_id == product_id)
            .order_by(ProductVersion.delta_version.desc(), ProductVersion.id.desc())
        )
        with self._session() as s:
            return [_version_record(v) for v in s.scalars(query)]

    def runs(
        self, product_id: str | None = None, *, limit: int = 20, offset: int = 0
    ) -> list[RunRecord]:
        """The most recent ``limit`` runs, newest first, of one product or of all, skipping
        the ``offset`` newest (a page of them: the database skips, not Python)."""
        query = (
            select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit).offset(offset)
        )
        if product_id is not None:
            query = query.where(Run.product_id == product_id)
        with self._session() as s:
            return [_run_record(r) for r in s.scalars(query)]

    def publications(self) -> dict[str, tuple[VersionRecord | None, RunRecord | None]]:
        """Per product: its newest published version and its newest run, in two queries (a
        listing of a thousand products must not cost a thousand round trips)."""
        newest_version = (
            select(ProductVersion.product_id, func.max(ProductVersion.delta_version).label("v"))
            .group_by(ProductVersion.product_id)
            .subquery()
        )
        newest_run = (
            select(Run.product_id, func.max(Run.started_at).label("at"))
            .group_by(Run.product_id)
            .subquery()
        )
        out: dict[str, tuple[VersionRecord | None, RunRecord | None]] = {}
        with self._session() as s:
            for version in s.scalars(
                select(ProductVersion).join(
                    newest_version,
                    (ProductVersion.product_id == newest_version.c.product_id)
                    & (ProductVersion.delta_version == newest_version.c.v),
                )
            ):
                out[version.product_id] = (_version_record(version), None)
            for run in s.scalars(
                select(Run)
                .join(
                    newest_run,
                    (Run.product_id == newest_run.c.product_id)
                    & (Run.started_at == newest_run.c.at),
                )
                .order_by(Run.id)
            ):
                out[run.product_id] = (out.get(run.product_id, (None, None))[0], _run_record(run))
        return out

    def last_run(self, product_id: str) -> RunRecord | None:
        found = self.runs(product_id, limit=1)
        return found[0] if found else None

    def quality(self, run_id: str) -> list[QualityRecord]:
        """The quality results recorded for ``run_id``, in the order they were recorded."""
        query = (
            select(QualityResult).where(QualityResult.run_id == run_id).order_by(QualityResult.id)
        )
        with self._session() as s:
            return [_quality_record(q) for q in s.scalars(query)]

    def lineage(self, product_id: str | None = None) -> list[LineageRecord]:
        """Edges into ``product_id`` and edges out of it to other products; all if None."""
        query = select(LineageEdge).order_by(
            LineageEdge.target, LineageEdge.source_kind, LineageEdge.source
        )
        if product_id is not None:
            query = query.where(
                or_(
                    LineageEdge.target == product_id,
                    (LineageEdge.source_kind == "product") & (LineageEdge.source == product_id),
                )
            )
        with self._session() as s:
            return [_lineage_record(e) for e in s.scalars(query)]

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        """One short transaction; database failures surface as ``CatalogError``."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        engine = self._engine if write else self._read_engine
        try:
            with Session(engine) as s, s.begin():
                yield s
        except SQLAlchemyError as exc:
            raise CatalogError(f"catalog at {self.url}: {_reason(exc)}", hint=self._hint()) from exc

    @staticmethod
    def _get_run(s: Session, run_id: str) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id!r} in the catalog")
        return run

    def _open_error(self, exc: BaseException) -> CatalogError:
        return CatalogError(
            f"cannot open the catalog at {self.url}: {_reason(exc)}", hint=self._hint()
        )

    def _hint(self) -> str:
        if self._backend == "sqlite":
            return (
                "check that the directory is writable and the file is a meshkit catalog "
                "(a SQLite database), not some other file"
            )
        if self._backend == "postgresql":
            return (
                "check that the server is running and reachable, that the database exists, "
                "that the credentials are right and that the user may create tables; "
                "the PostgreSQL driver comes with `pip install 'meshkit[postgres]'`"
            )
        return f"use a URL like {_URL_EXAMPLES}"


# -- engine setup ------------------------------------------------------------------------------


def _parse_url(url: str, masked: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(
            f"cannot open the catalog at {masked}: not a database URL",
            hint=f"use a URL like {_URL_EXAMPLES}",
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _SUPPORTED_BACKENDS:
        raise CatalogError(
            f"cannot open the catalog at {masked}: {backend!r} databases are not supported",
            hint=f"the catalog runs on SQLite or PostgreSQL; use a URL like {_URL_EXAMPLES}",
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


# -- SQL helpers -------------------------------------------------------------------------------


def _insert(s: Session, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """A dialect INSERT, for its ON CONFLICT clause (both supported backends have one)."""
    if s.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _upsert(s: Session, model: type[Base], values: dict[str, Any], *, keys: Sequence[str]) -> None:
    """INSERT .. ON CONFLICT DO UPDATE: atomic, so concurrent builds registering the same
    domain cannot both see it missing and then collide on the primary key."""
    _upsert_many(s, model, [values], keys=keys)


def _upsert_many(
    s: Session, model: type[Base], rows: Sequence[dict[str, Any]], *, keys: Sequence[str]
) -> None:
    """`_upsert` of many rows (all with the same columns) in one executemany."""
    stmt = _insert(s, model)
    updates = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
    s.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates), list(rows))


def _check_choice(what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(allowed)}")


def _reason(exc: BaseException) -> str:
    """The first line of the underlying driver's message, without SQL or links to docs."""
    source: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        source = exc.orig
    lines = [line.strip() for line in str(source).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(source).__name__
    return mask_password(text)


def _matches(product: ProductRecord, needle: str) -> bool:
    return (
        needle in product.id.casefold()
        or needle in product.description.casefold()
        or any(needle in tag.casefold() for tag in product.tags)
    )


def _suggest(wanted: str, known: list[str]) -> str:
    close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    # "orders" for "sales.orders": the user remembered the name but not the domain.
    by_name = [k for k in known if k.rpartition(".")[2] == wanted]
    candidates = list(dict.fromkeys([*by_name, *close]))
    if candidates:
        return "did you mean " + " or ".join(repr(c) for c in candidates) + "?"
    if not known:
        return "the catalog has no products yet; build one first"
    return "product ids are '<domain>.<name>'; list the catalog's products to see them all"


# -- ORM -> record -----------------------------------------------------------------------------


def _domain_record(d: Domain) -> DomainRecord:
    return DomainRecord(
        name=d.name,
        description=d.description,
        type=d.type,
        owner_team=d.owner_team,
        spec=d.spec,
        updated_at=d.updated_at,
    )


def _product_record(p: Product) -> ProductRecord:
    return ProductRecord(
        id=p.id,
        domain=p.domain,
        name=p.name,
        version=p.version,
        status=p.status,
        description=p.description,
        tags=list(p.tags),
        owners=p.owners,
        spec=p.spec,
        spec_hash=p.spec_hash,
        updated_at=p.updated_at,
    )


def _version_record(v: ProductVersion) -> VersionRecord:
    return VersionRecord(
        id=v.id,
        product_id=v.product_id,
        semver=v.semver,
        spec_hash=v.spec_hash,
        schema=v.schema,
        delta_version=v.delta_version,
        row_count=v.row_count,
        run_id=v.run_id,
        published_at=v.published_at,
    )


def _run_record(r: Run) -> RunRecord:
    return RunRecord(
        id=r.id,
        product_id=r.product_id,
        status=r.status,
        started_at=r.started_at,
        finished_at=r.finished_at,
        timings=r.timings,
        error=r.error,
        spec_hash=r.spec_hash,
        row_count=r.row_count,
        delta_version=r.delta_version,
        host=r.host,
        pid=r.pid,
    )


def _quality_record(q: QualityResult) -> QualityRecord:
    return QualityRecord(
        check_name=q.check_name,
        check_type=q.check_type,
        column=q.column,
        severity=q.severity,
        passed=q.passed,
        measured=q.measured,
        threshold=q.threshold,
        message=q.message,
        samples=q.samples,
    )


def _lineage_record(e: LineageEdge) -> LineageRecord:
    return LineageRecord(
        target=e.target, source_kind=e.source_kind, source=e.source, updated_at=e.updated_at
    )
