"""The build loop: products in dependency order, each under its build lock, published only
when its spec, code or inputs changed since its newest version (or when forced).

`builder.build_product` does one product's write-audit-publish and never touches the
catalog; this service records around it: the run, the quality results, the version, its
lineage, and the audit entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from meshkit import governance
from meshkit.builder import inputs, planner
from meshkit.builder.fingerprint import KEY as FINGERPRINT
from meshkit.builder.fingerprint import Fingerprint, fingerprint, stale
from meshkit.builder.runner import BuildResult, BuildStatus, Progress, build_product
from meshkit.catalog import QualityRecord, RunStatus
from meshkit.errors import BuildError
from meshkit.events import Kind
from meshkit.events.subscribers import ProgressLines
from meshkit.specs import Product
from meshkit.tables.delta import Snapshot
from meshkit.tables.locks import Holder, build_lock
from meshkit.workspace.policies import policy_error
from meshkit.workspace.recovery import HOST, run_status

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace

OUTCOMES = {
    RunStatus.SUCCESS: Kind.BUILD_PUBLISHED,
    RunStatus.FAILED: Kind.BUILD_FAILED,
    RunStatus.BLOCKED: Kind.BUILD_BLOCKED,
    RunStatus.CONFLICT: Kind.BUILD_CONFLICT,
}
ACTOR = f"local:{os.environ.get('USER') or os.environ.get('USERNAME') or 'operator'}"

ENDED: Final = frozenset(
    {
        *(str(s) for s in RunStatus if s.finished),
        BuildStatus.BLOCKED.label,
        BuildStatus.SKIPPED.label,
        BuildStatus.UP_TO_DATE.label,
    }
)
"""The progress messages that end a product's build: its run's status once it ran, else why
it did not run (blocked by a policy, skipped, up to date)."""


class Builds:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def plan(
        self,
        products: Sequence[str] = (),
        *,
        downstream: Sequence[str] = (),
        upstream: Sequence[str] = (),
    ) -> list[str]:
        return planner.plan(self.ws.mesh, products, downstream=downstream, upstream=upstream)

    def build(
        self,
        products: Sequence[str] = (),
        *,
        downstream: Sequence[str] = (),
        upstream: Sequence[str] = (),
        progress: Progress = lambda pid, msg: None,
        force: bool = False,
    ) -> list[BuildResult]:
        """Build products in dependency order. A product whose upstream failed is skipped; one
        whose spec, code and inputs are unchanged since its newest version is up to date and
        publishes nothing, unless `force`."""
        order = self.plan(products, downstream=downstream, upstream=upstream)
        lines = ProgressLines(progress, products=order)  # this build's, not another thread's
        with self.ws.events.subscribed(lines, ProgressLines.kinds):
            return self._build_all(order, force=force)

    def _build_all(self, order: list[str], *, force: bool) -> list[BuildResult]:
        ws, emit = self.ws, self.ws.events
        # before registering new products: lifecycle-transitions compares with the old status
        findings = ws.last_findings = ws.policies.evaluate(order)
        blocked = {pid: [f for f in findings if f.product == pid and f.blocking] for pid in order}
        results: dict[str, BuildResult] = {}
        for pid in order:
            product = ws.mesh.products[pid]
            if blocked[pid]:
                results[pid] = BuildResult(
                    pid, BuildStatus.BLOCKED, error=policy_error(blocked[pid])
                )
                policies = sorted({f.policy for f in blocked[pid]})
                emit(Kind.BUILD_BLOCKED, pid, ACTOR, policies=policies)
                continue
            failed = [u for u in product.upstream() if u in results and not results[u].ok]
            if failed:
                results[pid] = BuildResult(
                    pid,
                    BuildStatus.SKIPPED,
                    error=BuildError(
                        f"{pid}: not built because {', '.join(failed)} failed",
                        hint="fix the upstream product first; consumers keep the previous version",
                    ),
                )
                emit(Kind.BUILD_SKIPPED, pid, ACTOR, failed=failed)
                continue
            results[pid] = self._build_one(product, force=force)
        return [results[pid] for pid in order]

    def _build_one(self, product: Product, *, force: bool) -> BuildResult:
        """Build one product under its build lock: another process building it is waited
        for (said as a `build.progress` event), then, unless `force`, a build whose spec, code and
        inputs are what the newest version was built from publishes nothing."""
        ws = self.ws
        table = ws.table_of(product.id)

        def waiting(holder: Holder, waited: float) -> None:
            message = f"waiting for {holder.describe()}, which is building it"
            ws.events(Kind.BUILD_PROGRESS, product.id, ACTOR, message=message)

        with build_lock(table, host=HOST, on_wait=waiting):
            ws.reconcile(product.id)
            pinned = {u: ws.snapshot(u) for u in product.upstream()}
            data = {
                u: ws.tables.data_version(ws.table_of(u), snap.version) if snap else None
                for u, snap in pinned.items()
            }
            current = fingerprint(ws.mesh, product, data)
            published = ws.snapshot(product.id)
            last = ws.tables.newest(table, key=FINGERPRINT) if published else None
            reasons = (
                stale(Fingerprint.from_json(last.metadata[FINGERPRINT]) if last else None, current)
                if published
                else ["it was never published"]
            )
            if published is not None and last is not None and not reasons and not force:
                ws.events(Kind.BUILD_UP_TO_DATE, product.id, ACTOR, version=published.version)
                known = ws.sync.known(product.id)
                versions = ws.catalog.versions.of(product.id) if known else []
                return BuildResult(
                    product.id,
                    BuildStatus.UP_TO_DATE,
                    delta_version=published.version,
                    rows=versions[0].row_count if versions else None,
                    reasons=[f"spec, code and inputs unchanged since version {last.version}"],
                )
            result = self._publish(product, pinned, current)
            result.reasons = ["--force"] if force and not reasons else reasons
            return result

    def _publish(
        self,
        product: Product,
        pinned: dict[str, Snapshot | None],
        current: Fingerprint,
    ) -> BuildResult:
        ws, emit = self.ws, self.ws.events
        catalog = ws.catalog
        run_id = catalog.runs.start(
            product_id=product.id, spec_hash=product.spec_hash, host=HOST, pid=os.getpid()
        )
        emit(Kind.BUILD_STARTED, product.id, ACTOR, run=run_id)

        def progress(pid: str, message: str) -> None:
            emit(Kind.BUILD_PROGRESS, pid, ACTOR, message=message)

        inputs_read = {
            u: (snap.version if snap is not None else None) for u, snap in pinned.items()
        }
        result = build_product(
            ws.mesh,
            product,
            engine=ws.engine,
            tables=ws.tables,
            run_id=run_id,
            pinned=pinned,
            progress=progress,
            metadata={
                "meshkit.inputs": json.dumps(inputs_read, sort_keys=True),
                FINGERPRINT: current.to_json(),
            },
            now=ws.now(),
        )
        catalog.runs.record_quality(run_id, [_quality_record(c) for c in result.checks])
        for check in result.checks:
            emit(Kind.QUALITY_RESULT, product.id, ACTOR, run=run_id, **_quality_detail(check))
        if result.ok and result.delta_version is not None:
            catalog.versions.record(
                product_id=product.id,
                semver=product.spec.version,
                spec_hash=product.spec_hash,
                schema=product.schema_json(),
                delta_version=result.delta_version,
                row_count=result.rows or 0,
                run_id=run_id,
            )
            catalog.lineage.replace(
                product.id,
                [
                    (p.kind, inputs.describe_source(p, ws.tables, ws.mesh))
                    for p in product.spec.inputs
                ],
            )
            catalog.lineage.replace_columns(
                product.id,
                governance.column_lineage_rows(ws.mesh, product, lineage=ws.lineage_cache),
            )
            ws.sync.register([product.id])  # the catalog's status is the published one
        status = run_status(result)
        catalog.runs.finish(
            run_id,
            status=status,
            timings=result.timings,
            error=str(result.error) if result.error else None,
            row_count=result.rows,
            delta_version=result.delta_version,
        )
        # once everything is recorded: a subscriber told "published" can read it all back
        emit(
            OUTCOMES[status],
            product.id,
            ACTOR,
            run=run_id,
            status=status,
            version=result.delta_version,
            waived=[f.policy for f in ws.last_findings if f.product == product.id and f.waiver],
        )
        return result


def _quality_detail(check: Any) -> dict[str, Any]:
    return {
        "check": check.name,
        "type": check.type,
        "column": check.column,
        "severity": str(check.severity),
        "passed": check.passed,
        "measured": check.measured,
        "threshold": check.threshold,
    }


def _quality_record(check: Any) -> QualityRecord:
    return QualityRecord(
        check_name=check.name,
        check_type=check.type,
        column=check.column,
        severity=str(check.severity),
        passed=check.passed,
        measured=check.measured,
        threshold=check.threshold,
        message=check.message,
        samples=check.samples,
    )
