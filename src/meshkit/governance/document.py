"""The input document custom rules see: the product's spec plus facts the platform computed.

The same JSON works in-process (Rego via regopy, Python plugins) and with an OPA server
(`POST /v1/data/<package>/deny` with `{"input": document}`). Its shape (docs/governance.md):

    {
      "id": "sales.orders",
      "domain": {"name": "sales", "type": "source-aligned", "owner": "sales-team"},
      "product": { ...the dataproduct.yaml as JSON, keys as written in YAML, defaults filled... },
      "facts": {
        "file": "domains/sales/products/orders/dataproduct.yaml",
        "upstream": ["customer.customers"],          # products this one reads
        "downstream": ["analytics.customer_revenue"], # products reading this one
        "sources": [{"kind": "file", "ref": "data/tpch/orders*.parquet"}],
        "columns": {"customer_name": {"classification": "confidential", "pii": true,
                                      "inherited_from": ["customer.customers.customer_name"],
                                      "declassified": false, "masked": false}},
        "previous_status": "active",                 # what the catalog last saw, or null
        "storage": {"backend": "local", "encryption": {"enabled": true, "method": "..."}},
        "audit": {"enabled": true}
      },
      "params": { ...the policy's params... }
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshkit.governance.lineage import ColumnClass
from meshkit.specs.mesh import Mesh, Product
from meshkit.urls import mask_url


def product_document(
    mesh: Mesh,
    product: Product,
    *,
    columns: Mapping[str, ColumnClass],
    previous_status: str | None,
    downstream: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """`downstream` (product id -> its consumers, see `downstream_index`) saves a pass over the
    mesh per product when building many documents."""
    spec = product.spec
    domain = mesh.domains.get(product.domain)
    consumers = (downstream if downstream is not None else downstream_index(mesh)).get(
        product.id, []
    )
    settings = mesh.spec.settings
    sources = []
    for port in spec.inputs:
        if port.product is not None:
            sources.append({"kind": "product", "ref": port.product, "port": port.name})
        elif port.file is not None:
            sources.append({"kind": "file", "ref": port.file, "port": port.name})
        else:
            assert port.database is not None
            ref = f"{mask_url(port.database.url)}/{port.database.table or 'query'}"
            sources.append({"kind": "database", "ref": ref, "port": port.name})
    column_facts = {}
    for column in spec.schema_.columns:
        effective = columns.get(column.name)
        column_facts[column.name] = {
            "classification": str(
                effective.classification if effective else product.classification_of(column)
            ),
            "pii": effective.pii if effective else column.pii,
            "inherited_from": list(effective.inherited_from) if effective else [],
            "declassified": effective.declassified if effective else False,
            "masked": column.masking is not None,
        }
    return {
        "id": product.id,
        "domain": {
            "name": product.domain,
            "type": str(domain.spec.type) if domain else None,
            "owner": domain.spec.owner if domain else None,
        },
        "product": product.spec_dict(),
        "facts": {
            "file": str(product.file.relative_to(mesh.root))
            if product.file.is_relative_to(mesh.root)
            else str(product.file),
            "upstream": sorted(product.upstream()),
            "downstream": sorted(consumers),
            "sources": sources,
            "columns": column_facts,
            "previous_status": previous_status,
            "storage": settings.storage.model_dump(mode="json"),
            "audit": settings.audit.model_dump(mode="json"),
        },
    }


def downstream_index(mesh: Mesh) -> dict[str, list[str]]:
    """Each product id -> the ids of the products that read it."""
    index: dict[str, list[str]] = {}
    for product in mesh.products.values():
        for upstream in product.upstream():
            index.setdefault(upstream, []).append(product.id)
    return index
