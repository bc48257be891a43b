"""SQLAlchemy models of the audit log: hash-chained entries, signed checkpoints, a signed head.

They live apart from ``models.py`` because the audit log is one concept with its own rules
(rows are only ever appended, never updated), but they share ``Base`` so one metadata, and so
one migration test, covers the whole catalog. ``audit.py`` imports this module, and ``facade.py``
imports ``audit.py``: opening a catalog is enough to register these tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from meshkit.catalog.models import Base, UTCDateTime


class AuditEntry(Base):
    """One audited event. ``hash`` covers every other column and the previous entry's hash."""

    __tablename__ = "audit_log"

    # Assigned by the appender under the head's lock, never by the database: a sequence would
    # leave gaps on rollback, and a gap must mean a deleted entry.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String())
    action: Mapped[str] = mapped_column(String())
    subject: Mapped[str] = mapped_column(String())
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String())
    hash: Mapped[str] = mapped_column(String())


class AuditCheckpoint(Base):
    """A signature over the chain's hash at entry ``seq``: everything up to it is vouched for."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String())
    signature: Mapped[str] = mapped_column(String())
    key_id: Mapped[str] = mapped_column(String())
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditHead(Base):
    """The one row (``id = 1``) naming, signed, the latest entry: deleting the tail shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String())
    signature: Mapped[str] = mapped_column(String())
    key_id: Mapped[str] = mapped_column(String())
