"""Discovery: domains, products, and a product's schema, versions, runs, quality and
lineage, each as the caller may see it (the Workspace asks `meshkit.access.permissions`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meshkit.api.deps import LISTING, PRODUCT, WS, Id, Limit, Offset, Text, Who, page
from meshkit.catalog.records import jsonable

router = APIRouter(tags=["discovery"])


@router.get("/domains", responses=LISTING)
def domains(ws: WS, who: Who, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    visible = ws.access.visible_products(who)
    items = [
        {
            "name": d.name,
            "description": d.spec.description,
            "type": str(d.spec.type),
            "owner": d.spec.owner,
            "products": sorted(p.id for p in visible if p.domain == d.name),
        }
        for _, d in sorted(ws.mesh.domains.items())
    ]
    return page(items, limit, offset)


@router.get("/products", responses=LISTING)
def products(
    ws: WS,
    who: Who,
    limit: Limit = 50,
    offset: Offset = 0,
    q: Text = None,
    domain: Text = None,
) -> dict[str, Any]:
    return page(jsonable(ws.products_for(who, search=q, domain=domain)), limit, offset)


@router.get("/products/{product_id}", responses=PRODUCT)
def product(ws: WS, who: Who, product_id: Id) -> dict[str, Any]:
    p = ws.access.product(who, product_id)
    published = ws.product_versions(who, product_id)
    shown: dict[str, Any] = jsonable(
        {
            "id": p.id,
            "domain": p.domain,
            "name": p.spec.name,
            "version": p.spec.version,
            "status": str(p.spec.status),
            "description": p.spec.description,
            "tags": list(p.spec.tags),
            "classification": str(p.spec.classification),
            "owner": p.spec.owner.model_dump(mode="json", exclude_none=True),
            "latest_version": published[0].to_dict() if published else None,  # newest first
        }
    )
    return shown


@router.get("/products/{product_id}/schema", responses=PRODUCT)
def schema(ws: WS, who: Who, product_id: Id) -> dict[str, Any]:
    p = ws.access.product(who, product_id)
    return {
        "product": p.id,
        "columns": [c.model_dump(mode="json", exclude_none=True) for c in p.spec.schema_.columns],
    }


@router.get("/products/{product_id}/versions", responses=PRODUCT)
def versions(
    ws: WS, who: Who, product_id: Id, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    rows = ws.product_versions(who, product_id)
    return page([r.to_dict() for r in rows], limit, offset)  # newest first


@router.get("/products/{product_id}/runs", responses=PRODUCT)
def runs(ws: WS, who: Who, product_id: Id, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Outside the owning domain, without error texts, hosts and process ids."""
    # one more than the page, to know whether another page follows
    rows = ws.product_runs(who, product_id, limit=limit + 1, offset=offset)
    return {
        "items": rows[:limit],
        "total": None,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(rows) > limit else None,
    }


@router.get("/products/{product_id}/quality", responses=PRODUCT)
def quality(ws: WS, who: Who, product_id: Id) -> dict[str, Any]:
    """Members of the owning domain see measured values, messages and failing rows;
    everyone else sees which checks passed (those details are unmasked, unfiltered data)."""
    results = ws.product_quality(who, product_id)
    return {"product": product_id, "run": results.run, "checks": results.checks}


@router.get("/products/{product_id}/lineage", responses=PRODUCT)
def lineage(ws: WS, who: Who, product_id: Id) -> dict[str, Any]:
    found = ws.product_lineage(who, product_id)
    return {"product": product_id, "edges": found.edges, "columns": found.columns}
