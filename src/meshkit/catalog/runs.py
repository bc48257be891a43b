"""``catalog.runs``: builds as the catalog records them, from start to finish (or to their
abandonment when the build process died), with the quality results of each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.orm import Session

from meshkit.catalog.backend import Backend
from meshkit.catalog.mapping import Convert, RecordMap, check_choice, values_of
from meshkit.catalog.models import ProductVersion, QualityResult, Run, utcnow
from meshkit.catalog.records import QualityRecord, RunRecord, RunStatus, jsonable
from meshkit.errors import NotFoundError

FINISHED: Final = frozenset(s for s in RunStatus if s.finished)
SEVERITIES: Final = frozenset({"error", "warning"})

RUN: RecordMap[RunRecord] = RecordMap(RunRecord, convert={"status": RunStatus})
QUALITY: RecordMap[QualityRecord] = RecordMap(QualityRecord)
_QUALITY_VALUES: dict[str, Convert] = {
    "passed": bool,
    "measured": jsonable,
    "threshold": jsonable,
    "samples": lambda samples: jsonable(list(samples)),
}


class RunRepository:
    """Runs and their quality results. A run starts ``running`` and finishes once, with one of
    the ``FINISHED`` statuses."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    # -- writes ----------------------------------------------------------------------------

    def start(
        self, *, product_id: str, spec_hash: str, host: str | None = None, pid: int | None = None
    ) -> str:
        """Record that a build of ``product_id`` started (in process ``pid`` on ``host``)."""
        run_id = uuid4().hex
        with self._backend.session(write=True) as s:
            s.add(
                Run(
                    id=run_id,
                    product_id=product_id,
                    status=RunStatus.RUNNING,
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

    def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        timings: dict[str, float],
        error: str | None = None,
        row_count: int | None = None,
        delta_version: int | None = None,
    ) -> None:
        check_choice("run status", status, FINISHED)
        with self._backend.session(write=True) as s:
            run = require_run(s, run_id)
            run.status = RunStatus(status)
            run.finished_at = utcnow()
            run.timings = {str(stage): float(seconds) for stage, seconds in timings.items()}
            run.error = error
            run.row_count = row_count
            run.delta_version = delta_version

    def abandon(self, product_id: str, *, host: str, dead: Callable[[int], bool]) -> list[str]:
        """Close the runs of ``product_id`` still running whose process on ``host`` is gone
        (``dead(pid)``): killed builds never finish their own row. A run that published before
        its process died is a success; any other failed. Returns their ids."""
        abandoned: list[str] = []
        with self._backend.session(write=True) as s:
            running = s.scalars(
                select(Run).where(
                    Run.product_id == product_id,
                    Run.status == RunStatus.RUNNING,
                    Run.host == host,
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
                    run.status = RunStatus.SUCCESS
                    run.delta_version = published
                    run.error = (
                        f"the build process (pid {run.pid} on {host}) ended after publishing "
                        f"version {published}; its run was completed from the table's history"
                    )
                else:
                    run.status = RunStatus.FAILED
                    run.error = (
                        f"the build process (pid {run.pid} on {host}) ended before finishing; "
                        "nothing it staged was published"
                    )
                abandoned.append(run.id)
        return abandoned

    def import_from_history(
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
        with self._backend.session(write=True) as s:
            if s.get(Run, run_id) is not None:
                return False
            s.add(
                Run(
                    id=run_id,
                    product_id=product_id,
                    status=RunStatus.SUCCESS,
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

    def record_quality(self, run_id: str, results: Sequence[QualityRecord]) -> None:
        """Store the quality results of a known run."""
        for result in results:
            check_choice("severity", result.severity, SEVERITIES)
        now = utcnow()
        with self._backend.session(write=True) as s:
            require_run(s, run_id)
            s.add_all(
                QualityResult(
                    **values_of(r, convert=_QUALITY_VALUES), run_id=run_id, recorded_at=now
                )
                for r in results
            )

    # -- reads -----------------------------------------------------------------------------

    def recent(
        self, product_id: str | None = None, *, limit: int = 20, offset: int = 0
    ) -> list[RunRecord]:
        """The most recent ``limit`` runs, newest first, of one product or of all, skipping
        the ``offset`` newest (a page of them: the database skips, not Python)."""
        query = (
            select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit).offset(offset)
        )
        if product_id is not None:
            query = query.where(Run.product_id == product_id)
        with self._backend.session() as s:
            return [RUN(r) for r in s.scalars(query)]

    def last(self, product_id: str) -> RunRecord | None:
        """The newest run of ``product_id``, or None if it never ran."""
        found = self.recent(product_id, limit=1)
        return found[0] if found else None

    def quality(self, run_id: str) -> list[QualityRecord]:
        """The quality results recorded for ``run_id``, in the order they were recorded."""
        query = (
            select(QualityResult).where(QualityResult.run_id == run_id).order_by(QualityResult.id)
        )
        with self._backend.session() as s:
            return [QUALITY(q) for q in s.scalars(query)]


def require_run(s: Session, run_id: str) -> Run:
    """The run's row, or ``NotFoundError``: what is recorded about a run needs the run."""
    run = s.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r} in the catalog")
    return run
