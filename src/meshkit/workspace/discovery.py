"""What the catalog and the specs say about products: one product in detail (`show`) and
the list (`list_products`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshkit import governance
from meshkit.access import masking
from meshkit.catalog import QualityRecord
from meshkit.catalog import search as product_search
from meshkit.errors import NotFoundError
from meshkit.specs import Product
from meshkit.specs.yamlpos import did_you_mean
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
        classes = governance.column_classes(ws.mesh, product)
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
