"""What the catalog and the specs say about products: one product in detail (`show`) and
the list (`list_products`), as the local operator sees them; and, for a caller of the API
(or the portal), what that caller may see of them (`*_for`, through
`meshkit.access.permissions`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshkit import governance
from meshkit.access import masking
from meshkit.access.identity import Caller
from meshkit.catalog import QualityRecord, VersionRecord
from meshkit.catalog import search as product_search
from meshkit.errors import NotFoundError
from meshkit.specs import Product
from meshkit.suggest import did_you_mean
from meshkit.tables.store import Location

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


@dataclass
class ProductDetails:
    product: Product
    table: Location
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


@dataclass(frozen=True)
class QualityResults:
    """The quality results of a product's last run, as a caller may see them."""

    run: str | None
    checks: list[dict[str, Any]]


@dataclass(frozen=True)
class ProductLineage:
    """A product's lineage edges between what a caller may see, and its column lineage."""

    edges: list[dict[str, Any]]
    columns: list[dict[str, Any]]


class Discovery:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def show(self, product_id: str) -> ProductDetails:
        ws = self.ws
        product = ws.product(product_id)
        if ws.tables.exists(ws.table_of(product_id)):
            ws.sync.register_new([product_id])
            ws.reconcile(product_id)
        known = ws.sync.known(product_id)
        last = ws.catalog.runs.last(product_id) if known else None
        classes = governance.column_classes(ws.mesh, product, lineage=ws.lineage_cache)
        return ProductDetails(
            product=product,
            table=ws.table_of(product_id),
            versions=ws.catalog.versions.of(product_id) if known else [],
            last_run=last,
            quality=ws.catalog.runs.quality(last.id) if last is not None else [],
            lineage=ws.catalog.lineage.edges(product_id) if known else [],
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
        """Products from the specs, joined with what the catalog knows of their publication;
        `search` is the catalog's product search (`meshkit.catalog.search`) over the specs'
        ids, descriptions and tags."""
        ws = self.ws
        if domain is not None and domain not in ws.mesh.domains:
            guess = did_you_mean(domain, sorted(ws.mesh.domains))
            raise NotFoundError(
                f"unknown domain '{domain}'",
                hint=f"did you mean '{guess}'?"
                if guess
                else f"domains: {', '.join(sorted(ws.mesh.domains))}",
            )
        published = ws.catalog.products.publications()
        rows = []
        for pid, product in sorted(ws.mesh.products.items()):
            spec = product.spec
            if domain is not None and product.domain != domain:
                continue
            if not product_search.matches(
                search, id=pid, description=spec.description, tags=spec.tags
            ):
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

    # -- what one caller may see (AccessDenied for a product it may not see) --------------

    def products_for(
        self, caller: Caller, *, search: str | None = None, domain: str | None = None
    ) -> list[dict[str, Any]]:
        """`list_products` of what `caller` may see; an unknown domain lists nothing."""
        visible = {p.id for p in self.ws.access.visible_products(caller)}
        listed = [p for p in self.list_products(search=search) if p["id"] in visible]
        return [p for p in listed if domain is None or p["domain"] == domain]

    def versions_for(self, caller: Caller, product_id: str) -> list[VersionRecord]:
        self.ws.access.product(caller, product_id)
        return self.ws.catalog.versions.of(product_id)

    def runs_for(
        self, caller: Caller, product_id: str, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        access = self.ws.access
        seen = access.permissions.visibility(caller, access.product(caller, product_id))
        runs = self.ws.catalog.runs.recent(product_id, limit=limit, offset=offset)
        return [seen.run(r.to_dict()) for r in runs]

    def quality_for(self, caller: Caller, product_id: str) -> QualityResults:
        access = self.ws.access
        seen = access.permissions.visibility(caller, access.product(caller, product_id))
        run = self.ws.catalog.runs.last(product_id)
        results = self.ws.catalog.runs.quality(run.id) if run is not None else []
        return QualityResults(
            run=run.id if run else None, checks=[seen.check(r.to_dict()) for r in results]
        )

    def lineage_for(self, caller: Caller, product_id: str) -> ProductLineage:
        access = self.ws.access
        access.product(caller, product_id)
        visible = {p.id for p in access.visible_products(caller)}
        edges = access.permissions.edges(self.ws.catalog.lineage.edges(product_id), visible)
        return ProductLineage(
            edges=[e.to_dict() for e in edges],
            columns=[
                c.to_dict()
                for c in access.permissions.column_sources(
                    self.ws.catalog.lineage.columns(product_id), visible, self.ws.mesh.products
                )
            ],
        )
