"""`Workspace`: a mesh on disk, its catalog, warehouse and engine, and one method per action.

The methods are the public surface the frontends call; each delegates to the service that
holds the work (see the package docstring), so this file stays a table of contents.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from meshkit import governance
from meshkit.access.audit import AuditLog, Verification
from meshkit.access.control import AccessControl
from meshkit.access.identity import LOCAL, Caller
from meshkit.access.permissions import Action
from meshkit.builder import planner
from meshkit.builder.runner import BuildResult, Progress
from meshkit.catalog import Catalog, VersionRecord
from meshkit.engines.base import Engine
from meshkit.engines.registry import engine_class
from meshkit.errors import SpecError
from meshkit.events import EventStream
from meshkit.events.subscribers import AuditTrail, Webhooks
from meshkit.governance.findings import Finding
from meshkit.specs import Mesh, Product, find_root, load_mesh
from meshkit.specs.models import MeshSettings
from meshkit.tables.delta import DeltaTables, Snapshot
from meshkit.tables.store import Location
from meshkit.tables.stores import is_uri
from meshkit.workspace.builds import Builds
from meshkit.workspace.discovery import (
    Discovery,
    ProductDetails,
    ProductLineage,
    QualityResults,
)
from meshkit.workspace.operations import Operations
from meshkit.workspace.policies import Policies
from meshkit.workspace.recovery import Recovery
from meshkit.workspace.security import Security
from meshkit.workspace.sync import CatalogSync
from meshkit.workspace.validation import Validation, ValidationReport

ENV_CATALOG = "MESHKIT_CATALOG_URL"
ENV_WAREHOUSE = "MESHKIT_WAREHOUSE"


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
        self.events = EventStream()
        """What happens, for every subscriber: the audit log and webhooks from the start."""
        # the audit trail first: a change it cannot record fails before anyone else hears of it
        self.events.subscribe(AuditTrail(self.record), AuditTrail.kinds)
        self.events.subscribe(
            Webhooks(lambda: self.mesh.spec.access.webhooks, self.events), Webhooks.kinds
        )
        self.sync = CatalogSync(self)
        self.validation = Validation(self)
        self.policies = Policies(self)
        self.builds = Builds(self)
        self.recovery = Recovery(self)
        self.operations = Operations(self)
        self.discovery = Discovery(self)
        self.security = Security(self)

    @classmethod
    def open(cls, path: Path | None = None, **overrides: Any) -> Workspace:
        return cls(find_root(path or Path.cwd()), **overrides)

    # ------------------------------------------------------------ resources

    @cached_property
    def mesh(self) -> Mesh:
        """The specs, loaded and checked (including the policy declarations)."""
        mesh = load_mesh(self.root)
        problems = governance.check_policies(mesh, now=self.now())
        if problems:
            raise SpecError(problems)
        return mesh

    def use_mesh(self, mesh: Mesh) -> None:
        """Take a mesh loaded and checked elsewhere (by `validate`) as `self.mesh`."""
        self.__dict__["mesh"] = mesh

    def use_settings(self, settings: MeshSettings) -> None:
        """Settings read by a lenient load, for the catalog and engine while the rest of the
        specs have problems."""
        self._settings = settings

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
        """The warehouse: `settings.warehouse` (or MESHKIT_WAREHOUSE), a URI whose scheme
        chooses the table store, or a path (relative to the mesh root) in the local one."""
        warehouse = self._warehouse or self.mesh.spec.settings.warehouse
        return DeltaTables(warehouse if is_uri(warehouse) else self.mesh.resolve_path(warehouse))

    @cached_property
    def lineage_cache(self) -> governance.LineageCache:
        """Derived column lineage, remembered in memory and in `.meshkit/lineage-memo.json`."""
        return governance.LineageCache(self.root / ".meshkit" / "lineage-memo.json")

    @cached_property
    def engine(self) -> Engine:
        return self.new_engine(self.settings)

    def new_engine(self, settings: MeshSettings) -> Engine:
        """The engine mesh.yaml's `settings.engine` names (`engines.registry`), sized by the
        settings."""
        cls = engine_class(settings.engine)
        return cls(threads=settings.staging_threads, memory_limit=settings.memory_limit)

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

    def table_of(self, product_id: str) -> Location:
        return self.tables.location(product_id, self.product(product_id).spec.output.table)

    def snapshot(self, product_id: str, version: int | None = None) -> Snapshot | None:
        return self.tables.snapshot(self.table_of(product_id), version)

    # -------------------------------------------------------------- actions

    def validate(self, *, policies: bool = True) -> ValidationReport:
        """Check everything that can be checked independently, in one run: every spec, the
        references between them, each product's SQL bound over typed empty inputs (declared
        schemas of upstream products, file metadata; no data is read) against its contract,
        and the policies. Raises SpecError with every problem, and what could not be checked
        because of them; or PolicyError when only policies fail."""
        return self.validation.validate(policies=policies)

    def check_policies(self, products: Sequence[str] = (), *, record: bool = True) -> list[Finding]:
        """Evaluate the policies that apply to `products` (default all) and store the results.

        Raises PolicyError if a `required` policy fails (after waivers).
        """
        return self.policies.check(products, record=record)

    def evaluate_policies(
        self, products: Sequence[str] = (), *, record: bool = True
    ) -> list[Finding]:
        """Like check_policies, but returns blocking findings instead of raising."""
        return self.policies.evaluate(products, record=record)

    def policy_report(self) -> dict[str, Any]:
        """Compliance per domain and per policy, from the latest stored evaluation of each product."""
        return self.policies.report()

    def plan(
        self,
        products: Sequence[str] = (),
        *,
        downstream: Sequence[str] = (),
        upstream: Sequence[str] = (),
    ) -> list[str]:
        return self.builds.plan(products, downstream=downstream, upstream=upstream)

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
        return self.builds.build(
            products, downstream=downstream, upstream=upstream, progress=progress, force=force
        )

    def reconcile(self, product_id: str) -> None:
        """Bring the catalog up to date after a build process died: record any version it
        committed but did not register, and close runs whose process is gone."""
        self.recovery.reconcile(product_id)

    def vacuum(
        self,
        products: Sequence[str] = (),
        *,
        retain: timedelta | None = None,
        dry_run: bool = False,
    ) -> dict[str, list[str]]:
        """Delete table files older than `retain` (default: settings.vacuum_retention) that no
        kept version needs, including staged files of failed or killed builds."""
        return self.operations.vacuum(products, retain=retain, dry_run=dry_run)

    def apply_retention(self, products: Sequence[str] = (), *, dry_run: bool = False) -> list[Any]:
        """Delete rows older than each product's retention period as a new table version,
        vacuum files past the safety window, and record the new version in the catalog."""
        return self.operations.apply_retention(products, dry_run=dry_run)

    def show(self, product_id: str) -> ProductDetails:
        return self.discovery.show(product_id)

    def list_products(
        self, *, domain: str | None = None, search: str | None = None
    ) -> list[dict[str, Any]]:
        """Products from the specs, joined with what the catalog knows of their publication."""
        return self.discovery.list_products(domain=domain, search=search)

    # What one caller (of the API, later the portal) may see: AccessDenied, one message
    # whether hidden or missing, for a product it may not see; details only to its domain.

    def products_for(
        self, caller: Caller, *, search: str | None = None, domain: str | None = None
    ) -> list[dict[str, Any]]:
        """The products `caller` may see, as `list_products` shows them."""
        return self.discovery.products_for(caller, search=search, domain=domain)

    def product_versions(self, caller: Caller, product_id: str) -> list[VersionRecord]:
        """The published versions, newest first."""
        return self.discovery.versions_for(caller, product_id)

    def product_runs(
        self, caller: Caller, product_id: str, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Runs, newest first; outside the owning domain without error texts, hosts, pids."""
        return self.discovery.runs_for(caller, product_id, limit=limit, offset=offset)

    def product_quality(self, caller: Caller, product_id: str) -> QualityResults:
        """The last run's quality results; outside the owning domain only which passed."""
        return self.discovery.quality_for(caller, product_id)

    def product_lineage(self, caller: Caller, product_id: str) -> ProductLineage:
        """Lineage edges between products `caller` may see, and the column lineage."""
        return self.discovery.lineage_for(caller, product_id)

    def verify_audit_as(self, caller: Caller) -> Verification:
        """`verify_audit` for a caller allowed to read the audit log (AccessDenied else)."""
        self.access.permissions.require(caller, Action.READ_AUDIT)
        return self.verify_audit()

    def query(self, sql: str, *, limit: int | None = None) -> pa.Table:
        """Run one read-only SELECT over published products, named `<domain>.<name>`, as the
        local operator (no masks: it can read the files anyway), through the same checked,
        locked-down engine the API uses."""
        return self.access.query(LOCAL, sql, max_rows=limit).table

    @property
    def access(self) -> AccessControl:
        """Tokens, access requests and grants, and masked queries (see meshkit.access)."""
        return self.security.access

    @property
    def audit(self) -> AuditLog:
        """The tamper-evident audit log, signed with the platform's Ed25519 key."""
        return self.security.audit

    def verify_audit(
        self, public_key: bytes | None = None, *, head_file: Path | None = None
    ) -> Verification:
        """Check the audit log's hash chain and signatures: against `public_key` (PEM) when
        given, a copy kept away from the catalog's writers; else the key file's own. Then
        against the signed head in `head_file` (a copy shipped elsewhere), else in the head
        file of `settings.audit` when there is one."""
        return self.security.verify_audit(public_key, head_file=head_file)

    def audit_public_key(self) -> bytes:
        """The platform's audit public key as PEM: keep a copy to verify the log against."""
        return self.security.audit_public_key()

    def record(self, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        """Append to the audit log (when `settings.audit.enabled`)."""
        self.security.record(actor, action, subject, **detail)
