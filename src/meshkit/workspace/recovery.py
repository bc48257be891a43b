"""Crash recovery, in one place: what a build process that died left behind.

A build commits its Delta version before the catalog records it, so a process killed in
between leaves a version the catalog does not know and a run that never finishes.
`Recovery.reconcile` records the first from the table's own log and closes the second once
its process is gone (`process_is_gone`). `run_status` is the one mapping from how a build
ended (`BuildStatus`) to the status of its run (`RunStatus`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from meshkit.builder.runner import BuildResult, BuildStatus
from meshkit.catalog import RunStatus

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace

HOST = socket.gethostname()


def process_is_gone(pid: int) -> bool:
    """True if no live process has this PID on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


_RUN_STATUS: Final[Mapping[BuildStatus, RunStatus]] = MappingProxyType(
    {
        BuildStatus.PUBLISHED: RunStatus.SUCCESS,
        BuildStatus.UP_TO_DATE: RunStatus.SUCCESS,
        BuildStatus.BLOCKED: RunStatus.BLOCKED,
        BuildStatus.CONFLICT: RunStatus.CONFLICT,
        BuildStatus.FAILED: RunStatus.FAILED,
    }
)


def run_status(result: BuildResult) -> RunStatus:
    """The status a build's run finishes with: a success if it published, else why not (its
    gate refused the data, another build's commit won the race, or it failed). A skipped
    build never started a run, so it has none."""
    try:
        return _RUN_STATUS[result.status]
    except KeyError:
        raise ValueError(f"a {result.status} build of {result.product_id} has no run") from None


class Recovery:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def reconcile(self, product_id: str) -> None:
        """Bring the catalog up to date after a build process died: record any version it
        committed but did not register, and close runs whose process is gone."""
        self._reconcile_versions(product_id)
        if self.ws.sync.known(product_id):
            self.ws.catalog.runs.abandon(product_id, host=HOST, dead=process_is_gone)

    def _reconcile_versions(self, product_id: str) -> None:
        ws = self.ws
        history = ws.tables.history(ws.table_of(product_id))
        if not history:
            return
        known = {v.delta_version for v in ws.catalog.versions.of(product_id)}
        product = ws.mesh.products[product_id]
        for entry in history:
            run_id = entry.metadata.get("meshkit.run_id")
            if entry.version in known or not run_id:
                continue
            rows = int(entry.metadata.get("meshkit.rows", 0))
            spec_hash = str(entry.metadata.get("meshkit.spec_hash", ""))
            ws.catalog.runs.import_from_history(
                str(run_id),
                product_id=product_id,
                spec_hash=spec_hash,
                finished_at=entry.timestamp,
                delta_version=entry.version,
                row_count=rows,
            )
            ws.catalog.versions.record(
                product_id=product_id,
                semver=str(entry.metadata.get("meshkit.version", product.spec.version)),
                spec_hash=spec_hash,
                schema=product.schema_json(),
                delta_version=entry.version,
                row_count=rows,
                run_id=str(run_id),
                published_at=entry.timestamp,
            )
