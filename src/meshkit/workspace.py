"""The facade: one object that the CLI (and later the API and portal) call for everything."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from meshkit import governance
from meshkit.access import masking, witness
from meshkit.access.audit import (
    AuditLog,
    Verification,
    derive_secret,
    load_or_create_key,
    load_public_key,
    public_pem,
)
from meshkit.access.control import AccessControl
from meshkit.access.identity import LOCAL
from meshkit.builder import inputs, planner
from meshkit.builder.binding import bind_product
from meshkit.builder.fingerprint import KEY as FINGERPRINT
from meshkit.builder.fingerprint import Fingerprint, fingerprint, stale
from meshkit.builder.runner import BuildResult, Progress, build_product
from meshkit.catalog import Catalog, PolicyEvaluation, ProductRow, QualityRecord
from meshkit.engines.base import Engine
from meshkit.engines.registry import engine_class
from meshkit.errors import (
    BuildError,
    ConflictError,
    MeshkitError,
    NotFoundError,
    PolicyError,
    Problem,
    QualityGateError,
    SpecError,
)
from meshkit.governance import reports
from meshkit.governance.findings import Finding, Violation
from meshkit.specs import Mesh, Product, find_root, load_mesh
from meshkit.specs.loader import LoadedSpecs, load_specs, sorted_problems
from meshkit.specs.models import MeshSettings, format_duration
from meshkit.specs.yamlpos import did_you_mean
from meshkit.tables.delta import DeltaTables, Snapshot
from meshkit.tables.locks import Holder, build_lock

HOST = socket.gethostname()
ACTOR = f"local:{os.environ.get('USER') or os.environ.get('USERNAME') or 'operator'}"
MIN_VACUUM_RETENTION = timedelta(hours=1)
ENV_CATALOG = "MESHKIT_CATALOG_URL"
ENV_WAREHOUSE = "MESHKIT_WAREHOUSE"


@dataclass
class ValidationReport:
    products: int
    domains: int
    notes: list[str] = field(default_factory=list)
    """What was not checked, and why (a Python transform, a database input, ...)."""
    warnings: list[Problem] = field(default_factory=list)
    """Located problems that do not make the specs invalid (an input's files not there yet)."""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ProductDetails:
    product: Product
    table: Path
    versions: list[Any]
    last_run: Any | None
    quality: list[QualityRecord]
    lineage: list[Any]
    columns: list[ColumnDetails] = field(default_factory=list)


@dataclass(frozen=True)
class ColumnDetails:
    """A contract column as consumers meet it: its classification after lineage (a PII
    column counts as confidential at least) and the mask they see it through."""

    name: str
    type: str
    classification: str
    pii: bool
    inherited_from: list[str]
    masking: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Workspace:
    """A mesh on disk, its catalog and its warehouse.

    >>> ws = Workspace.open(Path("demo-mesh"))
    >>> results = ws.build()
    >>> ws.query("select count(*) from sales.orders")
    """

    def __init__(
        self,
        root: Path,
        *,
        catalog_url: str | None = None,
        warehouse: str | None = None,
    ) -> None:
        self.root = root.resolve()
        self._catalog_url = catalog_url or os.environ.get(ENV_CATALOG)
        self._warehouse = warehouse or os.environ.get(ENV_WAREHOUSE)
        self._catalog: Catalog | None = None
        self._settings: MeshSettings | None = None
        self.last_findings: list[Finding] = []  # the policy results of the last build

    @classmethod
    def open(cls, path: Path | None = None, **overrides: Any) -> Workspace:
        return cls(find_root(path or Path.cwd()), **overrides)

    # ---------------------------------------------------------------- specs

    @cached_property
    def mesh(self) -> Mesh:
        """The specs, loaded and checked (including the policy declarations)."""
        mesh = load_mesh(self.root)
        problems = governance.check_policies(mesh, now=self.now())
        if problems:
            raise SpecError(problems)
        return mesh

    def now(self) -> datetime:
        """The clock policies (waiver expiry) and checks use; tests freeze it."""
        return datetime.now(UTC)

    @property
    def settings(self) -> MeshSettings:
        """mesh.yaml's settings: of the loaded mesh, or, while `validate` reports problems in
        other files, of the mesh.yaml it read (the catalog and engine do not need the rest)."""
        if self._settings is not None and "mesh" not in self.__dict__:
            return self._settings
        return self.mesh.spec.settings

    @property
    def catalog_url(self) -> str:
        url = self._catalog_url or self.settings.catalog
        try:
            parsed = make_url(url)
        except ArgumentError:
            return url
        if (
            parsed.get_backend_name() == "sqlite"
            and parsed.database
            and parsed.database != ":memory:"
        ):
            path = Path(parsed.database)
            if not path.is_absolute():
                return parsed.set(database=str(self.root / path)).render_as_string(
                    hide_password=False
                )
        return url

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.catalog_url)
        return self._catalog

    @cached_property
    def tables(self) -> DeltaTables:
        return DeltaTables(
            self.mesh.resolve_path(self._warehouse or self.mesh.spec.settings.warehouse)
        )

    @cached_property
    def lineage_cache(self) -> governance.LineageCache:
        """Derived column lineage, remembered in memory and in `.meshkit/lineage-memo.json`."""
        return governance.LineageCache(self.root / ".meshkit" / "lineage-memo.json")

    @cached_property
    def engine(self) -> Engine:
        return _engine(self.settings)

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def product(self, product_id: str) -> Product:
        planner.require(self.mesh, product_id)
        return self.mesh.products[product_id]

    def table_of(self, product_id: str) -> Path:
        return self.tables.location(product_id, self.product(product_id).spec.output.table)

    def snapshot(self, product_id: str, version: int | None = None) -> Snapshot | None:
        return self.tables.snapshot(self.table_of(product_id), version)

    # ------------------------------------------------------------- validate

    def validate(self, *, policies: bool = True) -> ValidationReport:
        """Check everything that can be checked independently, in one run: every spec, the
        references between them, each product's SQL bound over typed empty inputs (declared
        schemas of upstream products, file metadata; no data is read) against its contract,
        and the policies. Raises SpecError with every problem, and what could not be checked
        because of them; or PolicyError when only policies fail."""
        loaded = load_specs(self.root)
        mesh = loaded.mesh
        if mesh is None:
            raise SpecError(loaded.problems, skipped=loaded.skipped)
        problems, skipped = list(loaded.problems), list(loaded.skipped)
        if not loaded.mesh_degraded:
            problems.extend(governance.check_policies(mesh, now=self.now()))
        report = ValidationReport(products=len(mesh.products), domains=len(mesh.domains))
        if not loaded.mesh_degraded:
            self._settings = mesh.spec.settings
        engine = _engine(mesh.spec.settings)
        for product in [*mesh.products.values(), *loaded.degraded.values()]:
            if any(_about_sql(product, p) for p in problems):
                skipped.append(
                    f"{product.id}: SQL not bound against the contract, because its inputs, "
                    "transform or schema have the errors above"
                )
                continue
            bound = bind_product(mesh, product, engine)
            problems.extend(bound.problems)
            report.warnings.extend(bound.warnings)
            report.notes.extend(bound.skipped)
        if not problems:
            self.__dict__["mesh"] = mesh  # what `self.mesh` would load and check again
            if policies:
                report.findings = self.check_policies()
            return report
        skipped.extend(report.notes)
        if policies:
            problems.extend(self._policy_problems(loaded, problems, skipped))
        raise SpecError(sorted_problems(problems), skipped=skipped)

    def _policy_problems(
        self, loaded: LoadedSpecs, problems: list[Problem], skipped: list[str]
    ) -> list[Problem]:
        """Blocking policy violations of the products that are sound, and whose inputs and
        domain are; the others' policies are said to be skipped (classification and PII flow
        from upstream products, and domains add policies)."""
        mesh = loaded.mesh
        assert mesh is not None
        if loaded.mesh_degraded:
            skipped.append("policies: not evaluated, because mesh.yaml has errors")
            return []
        files = {p.file for p in problems}
        sick = set(loaded.unloaded) | {
            pid
            for pid, p in mesh.products.items()
            if p.file in files or p.transform_file in files or p.domain in loaded.bad_domains
        }
        grew = True
        while grew:  # downstream of a sick product inherits its doubt
            more = {pid for pid, p in mesh.products.items() if sick.intersection(p.upstream())}
            grew = not more <= sick
            sick |= more
        sound = [pid for pid in sorted(mesh.products) if pid not in sick]
        doubtful = sorted(sick)
        if doubtful:
            skipped.append(
                f"policies of {', '.join(doubtful)}: not evaluated, because their specs (or their "
                "inputs' or domain's) have errors"
            )
        if not sound:
            return []
        findings = self._evaluate(mesh, sound)
        blocking = [f for f in findings if f.blocking]
        return policy_error(blocking).problems if blocking else []

    # ----------------------------------------------------------------- governance

    def check_policies(self, products: Sequence[str] = (), *, record: bool = True) -> list[Finding]:
        """Evaluate the policies that apply to `products` (default all) and store the results.

        Raises PolicyError if a `required` policy fails (after waivers).
        """
        findings = self.evaluate_policies(products, record=record)
        blocking = [f for f in findings if f.blocking]
        if blocking:
            raise policy_error(blocking)
        return findings

    def evaluate_policies(
        self, products: Sequence[str] = (), *, record: bool = True
    ) -> list[Finding]:
        """Like check_policies, but returns blocking findings instead of raising."""
        for pid in products:
            self.product(pid)
        ids = list(products) or sorted(self.mesh.products)
        previous = {p.id: p.status for p in self.catalog.products()}
        findings = self._evaluate(self.mesh, ids, previous)
        if record:  # the catalog lists every declared product, published or not
            self._register_new(self.mesh.products, known=set(previous))
            by_product: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
            for f in findings:
                by_product[f.product].append(f.to_dict())
            self.catalog.record_policy_results(
                [
                    PolicyEvaluation(
                        product_id=pid,
                        semver=self.mesh.products[pid].spec.version,
                        spec_hash=self.mesh.products[pid].spec_hash,
                        results=results,
                    )
                    for pid, results in by_product.items()
                ],
                evaluated_at=self.now(),
            )
        return findings

    def _evaluate(
        self, mesh: Mesh, ids: Sequence[str], previous: dict[str, str] | None = None
    ) -> list[Finding]:
        if previous is None:
            previous = {p.id: p.status for p in self.catalog.products()}
        try:
            return governance.evaluate(
                mesh, ids, now=self.now(), previous_status=previous, lineage=self.lineage_cache
            )
        finally:
            self.lineage_cache.save()

    def policy_report(self) -> dict[str, Any]:
        """Compliance per domain and per policy, from the latest stored evaluation of each product."""
        return reports.compliance(self.catalog.policy_results())

    def apply_retention(self, products: Sequence[str] = (), *, dry_run: bool = False) -> list[Any]:
        """Delete rows older than each product's retention period as a new table version,
        vacuum files past the safety window, and record the new version in the catalog."""
        from meshkit.governance.retention import apply_retention

        ids = list(products) or sorted(p for p, x in self.mesh.products.items() if x.spec.retention)
        results = []
        hours = max(1, int(self.mesh.spec.settings.vacuum_retention.total_seconds() // 3600))
        for pid in ids:
            product = self.product(pid)
            retention = product.spec.retention
            if retention is None:
                raise MeshkitError(
                    f"{pid} declares no retention period",
                    hint="add retention: {period: 365d, column: <date column>} to its spec",
                )
            with build_lock(self.table_of(pid), host=HOST):  # no build commits meanwhile
                result = apply_retention(
                    self.tables,
                    self.table_of(pid),
                    product_id=pid,
                    period=retention.period,
                    column=retention.column,
                    now=self.now(),
                    vacuum_hours=hours,
                    dry_run=dry_run,
                )
                if result.version is not None:
                    self._record_retention(product, result)
            results.append(result)
        return results

    def _record_retention(self, product: Product, result: Any) -> None:
        """A retention delete is a new version of the *published* product: the catalog gets a
        run and the version, with the last published version's semver, spec hash and schema
        (the spec on disk may hold unpublished changes, and its status must not be recorded:
        lifecycle-transitions compares with the last published one)."""
        self._register_new([product.id])
        published = self.catalog.versions(product.id)
        last = published[0] if published else None
        semver = last.semver if last else product.spec.version
        spec_hash = last.spec_hash if last else product.spec_hash
        schema = (
            last.schema
            if last
            else [c.model_dump(mode="json") for c in product.spec.schema_.columns]
        )
        run_id = self.catalog.start_run(
            product_id=product.id, spec_hash=spec_hash, host=HOST, pid=os.getpid()
        )
        rows = result.rows_before - result.rows_deleted
        self.catalog.record_version(
            product_id=product.id,
            semver=semver,
            spec_hash=spec_hash,
            schema=schema,
            delta_version=result.version,
            row_count=rows,
            run_id=run_id,
        )
        self.catalog.finish_run(
            run_id, status="success", timings={}, row_count=rows, delta_version=result.version
        )

    # ---------------------------------------------------------------- build

    def plan(
        self,
        products: Sequence[str] = (),
        *,
        downstream: Sequence[str] = (),
        upstream: Sequence[str] = (),
    ) -> list[str]:
        return planner.plan(self.mesh, products, downstream=downstream, upstream=upstream)

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
        # before registering new products: lifecycle-transitions compares with the old status
        findings = self.last_findings = self.evaluate_policies(order)
        blocked = {pid: [f for f in findings if f.product == pid and f.blocking] for pid in order}
        results: dict[str, BuildResult] = {}
        for pid in order:
            product = self.mesh.products[pid]
            if blocked[pid]:
                results[pid] = BuildResult(pid, "blocked", error=policy_error(blocked[pid]))
                progress(pid, "blocked")
                continue
            failed = [u for u in product.upstream() if u in results and not results[u].ok]
            if failed:
                results[pid] = BuildResult(
                    pid,
                    "skipped",
                    error=BuildError(
                        f"{pid}: not built because {', '.join(failed)} failed",
                        hint="fix the upstream product first; consumers keep the previous version",
                    ),
                )
                progress(pid, "skipped")
                continue
            results[pid] = self._build_one(product, progress, force=force)
        return [results[pid] for pid in order]

    def _register_new(self, product_ids: Iterable[str], *, known: set[str] | None = None) -> None:
        """Add products the catalog does not know yet; a known product's row (its status above
        all, which lifecycle-transitions compares with) changes only when it publishes."""
        if known is None:
            known = {p.id for p in self.catalog.products()}
        self._register_specs([pid for pid in product_ids if pid not in known])

    def _register_specs(self, product_ids: Iterable[str]) -> None:
        for domain in self.mesh.domains.values():
            self.catalog.upsert_domain(
                name=domain.name,
                description=domain.spec.description,
                type=str(domain.spec.type),
                owner_team=domain.spec.owner,
                spec=domain.spec.model_dump(mode="json", by_alias=True),
            )
        rows = []
        for pid in product_ids:
            p = self.mesh.products[pid]
            rows.append(
                ProductRow(
                    id=pid,
                    domain=p.domain,
                    name=p.spec.name,
                    version=p.spec.version,
                    status=str(p.spec.status),
                    description=p.spec.description,
                    tags=list(p.spec.tags),
                    owners=p.spec.owner.model_dump(mode="json", exclude_none=True),
                    spec=p.spec_dict(),
                    spec_hash=p.spec_hash,
                )
            )
        self.catalog.upsert_products(rows)

    def _build_one(self, product: Product, progress: Progress, *, force: bool) -> BuildResult:
        """Build one product under its build lock: another process building it is waited
        for (said through `progress`), then, unless `force`, a build whose spec, code and
        inputs are what the newest version was built from publishes nothing."""
        table = self.table_of(product.id)

        def waiting(holder: Holder, waited: float) -> None:
            progress(product.id, f"waiting for {holder.describe()}, which is building it")

        with build_lock(table, host=HOST, on_wait=waiting):
            self.reconcile(product.id)
            pinned = {u: self.snapshot(u) for u in product.upstream()}
            data = {
                u: self.tables.data_version(self.table_of(u), snap.version) if snap else None
                for u, snap in pinned.items()
            }
            current = fingerprint(self.mesh, product, data)
            published = self.snapshot(product.id)
            last = self.tables.newest(table, key=FINGERPRINT) if published else None
            reasons = (
                stale(Fingerprint.from_json(last.metadata[FINGERPRINT]) if last else None, current)
                if published
                else ["it was never published"]
            )
            if published is not None and last is not None and not reasons and not force:
                progress(product.id, "up to date")
                versions = self.catalog.versions(product.id) if self._known(product.id) else []
                return BuildResult(
                    product.id,
                    "up_to_date",
                    delta_version=published.version,
                    rows=versions[0].row_count if versions else None,
                    reasons=[f"spec, code and inputs unchanged since version {last.version}"],
                )
            result = self._publish(product, progress, pinned, current)
            result.reasons = ["--force"] if force and not reasons else reasons
            return result

    def _publish(
        self,
        product: Product,
        progress: Progress,
        pinned: dict[str, Snapshot | None],
        current: Fingerprint,
    ) -> BuildResult:
        run_id = self.catalog.start_run(
            product_id=product.id, spec_hash=product.spec_hash, host=HOST, pid=os.getpid()
        )
        inputs_read = {
            u: (snap.version if snap is not None else None) for u, snap in pinned.items()
        }
        result = build_product(
            self.mesh,
            product,
            engine=self.engine,
            tables=self.tables,
            run_id=run_id,
            pinned=pinned,
            progress=progress,
            metadata={
                "meshkit.inputs": json.dumps(inputs_read, sort_keys=True),
                FINGERPRINT: current.to_json(),
            },
            now=self.now(),
        )
        self.catalog.record_quality(run_id, [_record(c) for c in result.checks])
        if result.ok and result.delta_version is not None:
            self.catalog.record_version(
                product_id=product.id,
                semver=product.spec.version,
                spec_hash=product.spec_hash,
                schema=[c.model_dump(mode="json") for c in product.spec.schema_.columns],
                delta_version=result.delta_version,
                row_count=result.rows or 0,
                run_id=run_id,
            )
            self.catalog.set_lineage(
                product.id,
                [
                    (p.kind, inputs.describe_source(p, self.tables, self.mesh))
                    for p in product.spec.inputs
                ],
            )
            self.catalog.set_column_lineage(
                product.id,
                governance.column_lineage_rows(self.mesh, product, lineage=self.lineage_cache),
            )
            self._register_specs([product.id])  # the catalog's status is the published one
        status = "success" if result.ok else _run_status(result.error)
        self.record(
            ACTOR,
            "build",
            product.id,
            run=run_id,
            status=status,
            version=result.delta_version,
            waived=[f.policy for f in self.last_findings if f.product == product.id and f.waiver],
        )
        self.catalog.finish_run(
            run_id,
            status=status,
            timings=result.timings,
            error=str(result.error) if result.error else None,
            row_count=result.rows,
            delta_version=result.delta_version,
        )
        progress(product.id, status)
        return result

    def reconcile(self, product_id: str) -> None:
        """Bring the catalog up to date after a build process died: record any version it
        committed but did not register, and close runs whose process is gone."""
        self._reconcile_versions(product_id)
        if self._known(product_id):
            self.catalog.abandon_runs(product_id, host=HOST, dead=process_is_gone)

    def _reconcile_versions(self, product_id: str) -> None:
        history = self.tables.history(self.table_of(product_id))
        if not history:
            return
        known = {v.delta_version for v in self.catalog.versions(product_id)}
        product = self.mesh.products[product_id]
        for entry in history:
            run_id = entry.metadata.get("meshkit.run_id")
            if entry.version in known or not run_id:
                continue
            rows = int(entry.metadata.get("meshkit.rows", 0))
            spec_hash = str(entry.metadata.get("meshkit.spec_hash", ""))
            self.catalog.import_run(
                str(run_id),
                product_id=product_id,
                spec_hash=spec_hash,
                finished_at=entry.timestamp,
                delta_version=entry.version,
                row_count=rows,
            )
            self.catalog.record_version(
                product_id=product_id,
                semver=str(entry.metadata.get("meshkit.version", product.spec.version)),
                spec_hash=spec_hash,
                schema=[c.model_dump(mode="json") for c in product.spec.schema_.columns],
                delta_version=entry.version,
                row_count=rows,
                run_id=str(run_id),
                published_at=entry.timestamp,
            )

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
        keep = retain if retain is not None else self.mesh.spec.settings.vacuum_retention
        if keep < MIN_VACUUM_RETENTION:
            raise MeshkitError(
                f"refusing to vacuum files younger than {format_duration(MIN_VACUUM_RETENTION)}",
                hint="a build in progress owns staged files that no commit has added yet",
            )
        hours = max(1, int(keep.total_seconds() // 3600))
        removed: dict[str, list[str]] = {}
        for pid in products or sorted(self.mesh.products):
            self.product(pid)
            with build_lock(self.table_of(pid), host=HOST):  # its commits race no build's
                removed[pid] = self.tables.vacuum(
                    self.table_of(pid), retention_hours=hours, dry_run=dry_run
                )
        return removed

    # ------------------------------------------------------------- catalog

    def show(self, product_id: str) -> ProductDetails:
        product = self.product(product_id)
        if self.tables.exists(self.table_of(product_id)):
            self._register_new([product_id])
            self.reconcile(product_id)
        last = self.catalog.last_run(product_id) if self._known(product_id) else None
        classes = governance.column_classes(self.mesh, product, lineage=self.lineage_cache)
        return ProductDetails(
            product=product,
            table=self.table_of(product_id),
            versions=self.catalog.versions(product_id) if self._known(product_id) else [],
            last_run=last,
            quality=self.catalog.quality(last.id) if last is not None else [],
            lineage=self.catalog.lineage(product_id) if self._known(product_id) else [],
            columns=[
                ColumnDetails(
                    name=c.name,
                    type=c.type,
                    classification=str(masking.column_level(classes[c.name])),
                    pii=classes[c.name].pii,
                    inherited_from=list(classes[c.name].inherited_from),
                    masking=masking.describe(c.masking),
                )
                for c in product.spec.schema_.columns
            ],
        )

    def list_products(
        self, *, domain: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        """Products from the specs, joined with what the catalog knows of their publication."""
        if domain is not None and domain not in self.mesh.domains:
            guess = did_you_mean(domain, sorted(self.mesh.domains))
            raise NotFoundError(
                f"unknown domain '{domain}'",
                hint=f"did you mean '{guess}'?"
                if guess
                else f"domains: {', '.join(sorted(self.mesh.domains))}",
            )
        needle = (search or "").lower()
        published = self.catalog.publications()
        rows = []
        for pid, product in sorted(self.mesh.products.items()):
            spec = product.spec
            if domain is not None and product.domain != domain:
                continue
            haystack = " ".join([pid, spec.description, *spec.tags]).lower()
            if needle and needle not in haystack:
                continue
            newest, last = published.get(pid, (None, None))
            rows.append(
                {
                    "id": pid,
                    "domain": product.domain,
                    "version": spec.version,
                    "status": str(spec.status),
                    "owner": spec.owner.technical,
                    "description": spec.description,
                    "tags": list(spec.tags),
                    "published": newest.delta_version if newest else None,
                    "rows": newest.row_count if newest else None,
                    "last_run": last.status if last else None,
                }
            )
        return rows

    def _known(self, product_id: str) -> bool:
        try:
            self.catalog.product(product_id)
        except NotFoundError:
            return False
        return True

    # --------------------------------------------------------------- query

    def query(self, sql: str, *, limit: int | None = None) -> pa.Table:
        """Run one read-only SELECT over published products, named `<domain>.<name>`, as the
        local operator (no masks: it can read the files anyway), through the same checked,
        locked-down engine the API uses."""
        return self.access.query(LOCAL, sql, max_rows=limit).table

    # --------------------------------------------------------------- access

    @cached_property
    def access(self) -> AccessControl:
        """Tokens, access requests and grants, and masked queries (see meshkit.access)."""
        settings = self.mesh.spec.settings
        return AccessControl(
            mesh=self.mesh,
            catalog=self.catalog,
            snapshot=self.snapshot,
            history=lambda pid: self.tables.history(self.table_of(pid)),
            now=self.now,
            record=self.record,
            threads=settings.staging_threads,
            memory_limit=settings.memory_limit,
            hash_key=self._hash_key,
            lineage=self.lineage_cache,
        )

    @cached_property
    def _hash_key(self) -> str:
        """The secret of `hash` masks, derived from the platform key (settings.audit.key_file):
        as well kept as that key, and without a second secret to manage."""
        key = load_or_create_key(self.mesh.resolve_path(self.mesh.spec.settings.audit.key_file))
        return derive_secret(key, b"meshkit hash mask v1")

    @cached_property
    def audit(self) -> AuditLog:
        """The tamper-evident audit log, signed with the platform's Ed25519 key."""
        settings = self.mesh.spec.settings.audit
        key_file = self.mesh.resolve_path(settings.key_file)
        key = load_or_create_key(key_file)
        head_file = (
            self.mesh.resolve_path(settings.head_file)
            if settings.head_file
            else key_file.with_name(witness.DEFAULT_NAME)
        )
        return AuditLog(
            self.catalog, key, checkpoint_every=settings.checkpoint_every, head_file=head_file
        )

    def verify_audit(
        self, public_key: bytes | None = None, *, head_file: Path | None = None
    ) -> Verification:
        """Check the audit log's hash chain and signatures: against `public_key` (PEM) when
        given, a copy kept away from the catalog's writers; else the key file's own. Then
        against the signed head in `head_file` (a copy shipped elsewhere), else in the head
        file of `settings.audit` when there is one."""
        key = None if public_key is None else load_public_key(public_key)
        return self.audit.verify(key, head_file=head_file)

    def audit_public_key(self) -> bytes:
        """The platform's audit public key as PEM: keep a copy to verify the log against."""
        return public_pem(self.audit.public_key)

    def record(self, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        """Append to the audit log (when `settings.audit.enabled`)."""
        if self.mesh.spec.settings.audit.enabled:
            self.audit.record(actor, action, subject, **detail)


def _engine(settings: MeshSettings) -> Engine:
    """The engine `settings.engine` of mesh.yaml names (`engines.registry`), made from the settings."""
    cls = engine_class(settings.engine)
    return cls(threads=settings.staging_threads, memory_limit=settings.memory_limit)


def policy_error(findings: Sequence[Finding]) -> PolicyError:
    """One located problem per violation; a mesh-wide violation (in mesh.yaml) is listed once,
    not once per product."""
    problems: list[Problem] = []
    seen: set[tuple[object, ...]] = set()
    for finding in findings:
        for violation in finding.violations or [Violation(finding.message)]:
            key = (finding.policy, violation.file, violation.line, violation.message)
            if key in seen:
                continue
            seen.add(key)
            problems.append(
                Problem(
                    f"[{finding.policy}] {violation.message}",
                    file=violation.file,
                    path=violation.path,
                    line=violation.line,
                    column=violation.column,
                    hint=violation.hint,
                )
            )
    policies = sorted({f.policy for f in findings})
    return PolicyError(problems, sorted({f.product for f in findings}), policies=policies)


def _about_sql(product: Product, problem: Problem) -> bool:
    """Whether `problem` makes binding `product`'s SQL pointless: it is in its SQL file, or in
    the inputs, transform or schema of its spec."""
    if problem.file is not None and problem.file == product.transform_file:
        return True
    return problem.file == product.file and problem.path.split(".")[0].split("[")[0] in (
        "inputs",
        "transform",
        "schema",
    )


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


def _record(check: Any) -> QualityRecord:
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


def _run_status(error: MeshkitError | None) -> str:
    if isinstance(error, QualityGateError):
        return "blocked"
    if isinstance(error, ConflictError):
        return "conflict"
    return "failed"
