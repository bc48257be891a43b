"""The catalog's product and domain rows, kept in step with the specs.

The catalog lists every declared product, published or not. A product it does not know yet
is added as declared; a known product's row (its status above all, which the
`lifecycle-transitions` policy compares with) changes only when it publishes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshkit.catalog import ProductRow
from meshkit.errors import NotFoundError

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


class CatalogSync:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def known(self, product_id: str) -> bool:
        """Whether the catalog has a row for this product."""
        try:
            self.ws.catalog.products.get(product_id)
        except NotFoundError:
            return False
        return True

    def register_new(self, product_ids: Iterable[str], *, known: set[str] | None = None) -> None:
        """Add the products the catalog does not know yet."""
        if known is None:
            known = {p.id for p in self.ws.catalog.products.find()}
        self.register([pid for pid in product_ids if pid not in known])

    def register(self, product_ids: Iterable[str]) -> None:
        """Write the domains' rows and these products' rows as their specs say now."""
        mesh, catalog = self.ws.mesh, self.ws.catalog
        for domain in mesh.domains.values():
            catalog.products.upsert_domain(
                name=domain.name,
                description=domain.spec.description,
                type=str(domain.spec.type),
                owner_team=domain.spec.owner,
                spec=domain.spec.model_dump(mode="json", by_alias=True),
            )
        rows = []
        for pid in product_ids:
            p = mesh.products[pid]
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
        catalog.products.upsert(rows)
