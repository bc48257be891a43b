"""``catalog.products``: the domains and products the catalog knows, found by id, domain or
search, and what each last published."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from meshkit.catalog import search as product_search
from meshkit.catalog.backend import Backend, upsert, upsert_many
from meshkit.catalog.mapping import Convert, RecordMap, values_of
from meshkit.catalog.models import Domain, Product, ProductVersion, Run, utcnow
from meshkit.catalog.records import (
    DomainRecord,
    ProductRecord,
    RunRecord,
    VersionRecord,
    jsonable,
)
from meshkit.catalog.rows import ProductRow
from meshkit.catalog.runs import RUN
from meshkit.catalog.versions import VERSION
from meshkit.errors import NotFoundError
from meshkit.suggest import close_matches

DOMAIN: RecordMap[DomainRecord] = RecordMap(DomainRecord)
PRODUCT: RecordMap[ProductRecord] = RecordMap(ProductRecord, convert={"tags": list})
_PRODUCT_VALUES: dict[str, Convert] = {
    "tags": lambda tags: [str(tag) for tag in tags],
    "owners": jsonable,
    "spec": jsonable,
}

Publication = tuple[VersionRecord | None, RunRecord | None]


class ProductRepository:
    """Domains and products: registered from the specs, read by the CLI, API and builds."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    # -- domains ---------------------------------------------------------------------------

    def upsert_domain(
        self, *, name: str, description: str, type: str, owner_team: str, spec: dict[str, Any]
    ) -> None:
        values = {
            "name": name,
            "description": description,
            "type": type,
            "owner_team": owner_team,
            "spec": jsonable(spec),
            "updated_at": utcnow(),
        }
        with self._backend.session(write=True) as s:
            upsert(s, Domain, values, keys=("name",))

    def domains(self) -> list[DomainRecord]:
        with self._backend.session() as s:
            return [DOMAIN(d) for d in s.scalars(select(Domain).order_by(Domain.name))]

    # -- products --------------------------------------------------------------------------

    def upsert(self, rows: Sequence[ProductRow]) -> None:
        """Register or update products, all in one transaction; their domains must be known."""
        now = utcnow()
        with self._backend.session(write=True) as s:
            for domain in sorted({row.domain for row in rows}):
                if s.get(Domain, domain) is None:
                    first = next(row.id for row in rows if row.domain == domain)
                    raise NotFoundError(
                        f"cannot register product {first!r}: domain {domain!r} is not in the catalog",
                        hint="register the domain before its products",
                    )
            values = [
                {**values_of(row, convert=_PRODUCT_VALUES), "updated_at": now} for row in rows
            ]
            if values:
                upsert_many(s, Product, values, keys=("id",))

    def get(self, product_id: str) -> ProductRecord:
        """The product, or ``NotFoundError`` suggesting the ids it may have meant."""
        with self._backend.session() as s:
            found = s.get(Product, product_id)
            if found is not None:
                return PRODUCT(found)
            known = list(s.scalars(select(Product.id)))
        raise NotFoundError(
            f"no product {product_id!r} in the catalog", hint=_suggest(product_id, known)
        )

    def find(self, *, domain: str | None = None, search: str | None = None) -> list[ProductRecord]:
        """Products sorted by id, of one domain and found by ``search`` (``catalog.search``:
        id, description or tags, ignoring case); every product without either."""
        query = select(Product).order_by(Product.id)
        if domain is not None:
            query = query.where(Product.domain == domain)
        with self._backend.session() as s:
            found = [PRODUCT(p) for p in s.scalars(query)]
        # Matched here rather than in SQL: tags are a JSON list, which SQLite and PostgreSQL
        # search differently, and a catalog holds hundreds of products, not millions.
        return [
            p
            for p in found
            if product_search.matches(search, id=p.id, description=p.description, tags=p.tags)
        ]

    def publications(self) -> dict[str, Publication]:
        """Per product: its newest published version and its newest run, in two queries (a
        listing of a thousand products must not cost a thousand round trips)."""
        newest_version = (
            select(ProductVersion.product_id, func.max(ProductVersion.delta_version).label("v"))
            .group_by(ProductVersion.product_id)
            .subquery()
        )
        newest_run = (
            select(Run.product_id, func.max(Run.started_at).label("at"))
            .group_by(Run.product_id)
            .subquery()
        )
        out: dict[str, Publication] = {}
        with self._backend.session() as s:
            for version in s.scalars(
                select(ProductVersion).join(
                    newest_version,
                    (ProductVersion.product_id == newest_version.c.product_id)
                    & (ProductVersion.delta_version == newest_version.c.v),
                )
            ):
                out[version.product_id] = (VERSION(version), None)
            for run in s.scalars(
                select(Run)
                .join(
                    newest_run,
                    (Run.product_id == newest_run.c.product_id)
                    & (Run.started_at == newest_run.c.at),
                )
                .order_by(Run.id)
            ):
                out[run.product_id] = (out.get(run.product_id, (None, None))[0], RUN(run))
        return out


def _suggest(wanted: str, known: list[str]) -> str:
    close = close_matches(wanted, known)
    # "orders" for "sales.orders": the user remembered the name but not the domain.
    by_name = [k for k in known if k.rpartition(".")[2] == wanted]
    candidates = list(dict.fromkeys([*by_name, *close]))
    if candidates:
        return "did you mean " + " or ".join(repr(c) for c in candidates) + "?"
    if not known:
        return "the catalog has no products yet; build one first"
    return "product ids are '<domain>.<name>'; list the catalog's products to see them all"
