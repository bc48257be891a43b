"""SQLAlchemy models of the catalog database.

These classes are private to ``meshkit.catalog``: the rest of meshkit reads frozen records from
``Catalog`` so that no ORM object (and its lazy-loading session) ever leaks out of a transaction.
The migration in ``migrations/versions`` is written by hand; ``tests/catalog`` checks that it
produces exactly this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names keep the hand-written migration, SQLite batch mode (which recreates
# tables) and PostgreSQL (which names constraints itself otherwise) in agreement.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind the catalog stores)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC.

    PostgreSQL stores ``timestamptz`` natively, but SQLite keeps no offset and hands back naive
    values; normalising both ways means callers can compare and serialise timestamps without
    caring which database is behind the catalog.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime in the catalog: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    # Strings carry no length: SQLite ignores it and PostgreSQL would enforce it, so a long file
    # glob or description would fail on one backend only.
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Domain(Base):
    __tablename__ = "domains"

    name: Mapped[str] = mapped_column(String(), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String())
    owner_team: Mapped[str] = mapped_column(String())
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(), primary_key=True)
    domain: Mapped[str] = mapped_column(String(), ForeignKey("domains.name"))
    name: Mapped[str] = mapped_column(String())
    version: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    owners: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_product_id_started_at", "product_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(), primary_key=True)
    product_id: Mapped[str] = mapped_column(String())
    status: Mapped[str] = mapped_column(String())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    timings: Mapped[dict[str, float]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    spec_hash: Mapped[str] = mapped_column(String())
    row_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delta_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str | None] = mapped_column(String(), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ProductVersion(Base):
    __tablename__ = "product_versions"
    __table_args__ = (UniqueConstraint("product_id", "delta_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String(), ForeignKey("products.id"))
    semver: Mapped[str] = mapped_column(String())
    spec_hash: Mapped[str] = mapped_column(String())
    schema: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    delta_version: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(), ForeignKey("runs.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QualityResult(Base):
    __tablename__ = "quality_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Indexed because the only read is "all results of one run"; PostgreSQL does not index FKs.
    run_id: Mapped[str] = mapped_column(String(), ForeignKey("runs.id"), index=True)
    check_name: Mapped[str] = mapped_column(String())
    check_type: Mapped[str] = mapped_column(String())
    column: Mapped[str | None] = mapped_column(String(), nullable=True)
    severity: Mapped[str] = mapped_column(String())
    passed: Mapped[bool] = mapped_column(Boolean)
    measured: Mapped[Any] = mapped_column(JSON, nullable=True)
    threshold: Mapped[Any] = mapped_column(JSON, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    samples: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LineageEdge(Base):
    __tablename__ = "lineage_edges"
    __table_args__ = (UniqueConstraint("target", "source_kind", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String())
    source_kind: Mapped[str] = mapped_column(String())
    source: Mapped[str] = mapped_column(String())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PolicyResult(Base):
    """One policy's outcome on one product version, each time policies are evaluated."""

    __tablename__ = "policy_results"
    __table_args__ = (
        Index("ix_policy_results_product_id_evaluated_at", "product_id", "evaluated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String())
    semver: Mapped[str] = mapped_column(String())
    spec_hash: Mapped[str] = mapped_column(String())
    run_id: Mapped[str | None] = mapped_column(String(), nullable=True)
    policy: Mapped[str] = mapped_column(String())
    rule: Mapped[str] = mapped_column(String())
    enforcement: Mapped[str] = mapped_column(String())
    origin: Mapped[str] = mapped_column(String())
    outcome: Mapped[str] = mapped_column(String())
    message: Mapped[str] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text, nullable=True)
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    waiver: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ColumnLineage(Base):
    """Where an output column comes from, and the classification it carries because of it."""

    __tablename__ = "column_lineage"
    __table_args__ = (UniqueConstraint("product_id", "column", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[str] = mapped_column(String())
    column: Mapped[str] = mapped_column(String())
    source: Mapped[str] = mapped_column(String())
    classification: Mapped[str] = mapped_column(String())
    pii: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
