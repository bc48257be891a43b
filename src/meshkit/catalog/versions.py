"""``catalog.versions``: the versions each product published, one per Delta version, with the
run that published it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from meshkit.catalog.backend import Backend, upsert
from meshkit.catalog.mapping import RecordMap
from meshkit.catalog.models import Product, ProductVersion, utcnow
from meshkit.catalog.records import VersionRecord, jsonable
from meshkit.catalog.runs import require_run
from meshkit.errors import NotFoundError

VERSION: RecordMap[VersionRecord] = RecordMap(VersionRecord)


class VersionRepository:
    """Published versions of the catalog's products."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def record(
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
        with self._backend.session(write=True) as s:
            if s.get(Product, product_id) is None:
                raise NotFoundError(
                    f"cannot record a version of {product_id!r}: it is not in the catalog",
                    hint="register the product before publishing it",
                )
            require_run(s, run_id)
            upsert(s, ProductVersion, values, keys=("product_id", "delta_version"))

    def of(self, product_id: str) -> list[VersionRecord]:
        """Published versions of ``product_id``, newest first (empty if it never published)."""
        query = (
            select(ProductVersion)
            .where(ProductVersion.product_id == product_id)
            .order_by(ProductVersion.delta_version.desc(), ProductVersion.id.desc())
        )
        with self._backend.session() as s:
            return [VERSION(v) for v in s.scalars(query)]
