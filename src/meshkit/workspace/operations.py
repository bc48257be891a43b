"""Table housekeeping: vacuum and retention, each under the table's build lock so that its
commits race no build's."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from meshkit.catalog import RunStatus
from meshkit.errors import MeshkitError
from meshkit.specs import Product
from meshkit.specs.models import format_duration
from meshkit.tables.delta import MIN_VACUUM_RETENTION
from meshkit.tables.locks import build_lock
from meshkit.tables.retention import RetentionResult, apply_retention
from meshkit.workspace.recovery import HOST

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


class Operations:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def vacuum(
        self,
        products: Sequence[str] = (),
        *,
        retain: timedelta | None = None,
        dry_run: bool = False,
    ) -> dict[str, list[str]]:
        """Delete table files older than `retain` (default: settings.vacuum_retention) that no
        kept version needs, including staged files of failed or killed builds.

        Versions older than `retain` can no longer be read (time travel stops there).
        """
        ws = self.ws
        keep = retain if retain is not None else ws.mesh.spec.settings.vacuum_retention
        if keep < MIN_VACUUM_RETENTION:
            raise MeshkitError(
                f"refusing to vacuum files younger than {format_duration(MIN_VACUUM_RETENTION)}",
                hint="a build in progress owns staged files that no commit has added yet",
            )
        hours = max(1, int(keep.total_seconds() // 3600))
        removed: dict[str, list[str]] = {}
        for pid in products or sorted(ws.mesh.products):
            ws.product(pid)
            with build_lock(ws.table_of(pid), host=HOST):
                removed[pid] = ws.tables.vacuum(
                    ws.table_of(pid), retention_hours=hours, dry_run=dry_run
                )
        return removed

    def apply_retention(
        self, products: Sequence[str] = (), *, dry_run: bool = False
    ) -> list[RetentionResult]:
        """Delete rows older than each product's retention period as a new table version,
        vacuum files past the safety window, and record the new version in the catalog."""
        ws = self.ws
        ids = list(products) or sorted(p for p, x in ws.mesh.products.items() if x.spec.retention)
        results = []
        hours = max(1, int(ws.mesh.spec.settings.vacuum_retention.total_seconds() // 3600))
        for pid in ids:
            product = ws.product(pid)
            retention = product.spec.retention
            if retention is None:
                raise MeshkitError(
                    f"{pid} declares no retention period",
                    hint="add retention: {period: 365d, column: <date column>} to its spec",
                )
            with build_lock(ws.table_of(pid), host=HOST):  # no build commits meanwhile
                result = apply_retention(
                    ws.tables,
                    ws.table_of(pid),
                    product_id=pid,
                    period=retention.period,
                    column=retention.column,
                    now=ws.now(),
                    vacuum_hours=hours,
                    dry_run=dry_run,
                )
                if result.version is not None:
                    self._record_retention(product, result)
            results.append(result)
        return results

    def _record_retention(self, product: Product, result: RetentionResult) -> None:
        """A retention delete is a new version of the *published* product: the catalog gets a
        run and the version, with the last published version's semver, spec hash and schema
        (the spec on disk may hold unpublished changes, and its status must not be recorded:
        lifecycle-transitions compares with the last published one)."""
        ws = self.ws
        version = result.version
        assert version is not None  # only a delete that committed is recorded
        ws.sync.register_new([product.id])
        published = ws.catalog.versions.of(product.id)
        last = published[0] if published else None
        semver = last.semver if last else product.spec.version
        spec_hash = last.spec_hash if last else product.spec_hash
        schema = last.schema if last else product.schema_json()
        run_id = ws.catalog.runs.start(
            product_id=product.id, spec_hash=spec_hash, host=HOST, pid=os.getpid()
        )
        rows = result.rows_before - result.rows_deleted
        ws.catalog.versions.record(
            product_id=product.id,
            semver=semver,
            spec_hash=spec_hash,
            schema=schema,
            delta_version=version,
            row_count=rows,
            run_id=run_id,
        )
        ws.catalog.runs.finish(
            run_id,
            status=RunStatus.SUCCESS,
            timings={},
            row_count=rows,
            delta_version=version,
        )
