"""SQLAlchemy models of access control: API tokens and access requests (whose approved,
unexpired ones are the grants). Private to ``meshkit.catalog``, like ``models``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from meshkit.catalog.models import Base, UTCDateTime


class Token(Base):
    """An API token: only the SHA-256 of its secret is kept, so a leaked catalog leaks none."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(), primary_key=True)
    principal: Mapped[str] = mapped_column(String())
    secret_hash: Mapped[str] = mapped_column(String())
    description: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AccessRequest(Base):
    """A consumer's request for a product's output, and what became of it."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_product_id_status", "product_id", "status"),
        Index("ix_access_requests_consumer_status", "consumer", "status"),
    )

    id: Mapped[str] = mapped_column(String(), primary_key=True)
    product_id: Mapped[str] = mapped_column(String())
    consumer: Mapped[str] = mapped_column(String())
    requested_by: Mapped[str] = mapped_column(String())
    purpose: Mapped[str] = mapped_column(Text)
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String())
    auto: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str | None] = mapped_column(String(), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
