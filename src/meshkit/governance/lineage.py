"""The classification and PII that flow along column lineage: each product's lineage derived
from its spec and SQL (`product_lineage`, over `sql.lineage`), and each declared column's
effective classification (`propagate`).

`propagate` then computes each declared column's effective classification from the upstream
products' declared classifications. Each product is checked against its upstream's *declared*
contract (not the upstream's own propagated result): an upstream that under-declares fails its
own check, so classifications still flow transitively through declarations, and validating a
product needs only its direct upstream.

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.errors import MeshkitError
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification
from meshkit.sql.lineage import ColumnSource, Job, Lineage, LineageCache, column_lineage

__all__ = [
    "ColumnClass",
    "ColumnSource",
    "Job",
    "Lineage",
    "LineageCache",
    "column_lineage",
    "lineage_job",
    "product_lineage",
    "propagate",
]


@dataclass(frozen=True)
class ColumnClass:
    """The effective classification of one declared output column."""

    classification: Classification
    pii: bool
    inherited_from: tuple[str, ...]  # e.g. ("customer.customers.customer_name",), sorted
    declassified: bool  # a declassify entry lowered it


_RANK = {c: i for i, c in enumerate(Classification)}  # public < internal < confidential < ...


def product_lineage(
    product: Product,
    upstream: Mapping[str, Product],
    *,
    dialect: str,
    cache: LineageCache | None = None,
) -> Lineage:
    """`column_lineage` of a product's transform (read in `dialect`, remembered in `cache`),
    with each input's columns from its spec.

    A product input takes its columns from the upstream product's declared schema (`upstream`
    maps product ids to products). File and database inputs, and product inputs missing from
    `upstream`, have no columns known at validate time: they are opaque (see the module
    docstring), and a `SELECT *` over one yields the product's declared columns.

    A Python transform has no SQL: each declared column is taken to come from every column of
    every product input (fail-closed; see `_lineage_by_name`).
    """
    if product.spec.transform.python is not None:
        return _lineage_by_name(product, upstream)
    sql, known, opaque, declared = lineage_job(product, upstream)
    try:
        return column_lineage(
            sql, known, dialect=dialect, opaque=opaque, expected=declared, cache=cache
        )
    except MeshkitError as err:
        raise MeshkitError(f"{product.id}: {err.message}", hint=err.step or err.hint) from err


def lineage_job(product: Product, upstream: Mapping[str, Product]) -> Job:
    """The arguments of `column_lineage` for a SQL product: (sql, known inputs, opaque, expected)."""
    spec = product.spec
    known: dict[str, list[str]] = {}
    opaque: list[str] = []
    for port in spec.inputs:
        source = upstream.get(port.product) if port.product is not None else None
        if source is None:
            opaque.append(port.name)
        else:
            known[port.name] = [c.name for c in source.spec.schema_.columns]
    sql = product.transform_text if product.transform_text is not None else spec.transform.query
    if sql is None:
        raise MeshkitError(
            f"{product.id}: the transform SQL has not been loaded",
            hint=f"check that {spec.transform.sql} exists next to the spec",
        )
    return sql, known, opaque, [c.name for c in spec.schema_.columns]


def _lineage_by_name(product: Product, upstream: Mapping[str, Product]) -> Lineage:
    """Python code cannot be traced, so fail closed: every output column may come from every
    column of every upstream product (a renamed PII column must not slip through). A column
    that is safe says so with `declassify: {to, reason}`."""
    sources: set[ColumnSource] = set()
    for port in product.spec.inputs:
        source = upstream.get(port.product) if port.product is not None else None
        if source is not None:
            sources.update(ColumnSource(port.name, c.name) for c in source.spec.schema_.columns)
    return {column.name: frozenset(sources) for column in product.spec.schema_.columns}


# ------------------------------------------------------------------------------- propagation


def propagate(
    product: Product,
    upstream: Mapping[str, Product],
    *,
    dialect: str,
    cache: LineageCache | None = None,
) -> dict[str, ColumnClass]:
    """The effective classification and PII flag of each declared column of `product`
    (its lineage read in `dialect`, remembered in `cache`).

    classification = max(the column's declared classification, the declared classification of
    every upstream-product column it is computed from); pii = declared pii or any source's pii.
    File and database inputs declare no classification and contribute nothing. A `declassify:
    {to, reason}` entry replaces the inherited part by `to` and clears inherited pii (the column's
    own declared classification and pii still stand); `declassified` says whether that changed
    the outcome. `inherited_from` lists the upstream columns (`<product id>.<column>`) that
    imposed something: PII, or a classification above the declared one (listed even when
    declassified, to show what was lowered). A declared column the SQL does not produce (the
    contract check catches that at build) inherits nothing. Raises MeshkitError when the
    transform's lineage cannot be derived.
    """
    lineage = {
        name.lower(): sources
        for name, sources in product_lineage(
            product, upstream, dialect=dialect, cache=cache
        ).items()
    }
    ports = {port.name: port for port in product.spec.inputs}
    result: dict[str, ColumnClass] = {}
    for column in product.spec.schema_.columns:
        declared = product.classification_of(column)
        inherited = Classification.PUBLIC
        inherited_pii = False
        origins: set[str] = set()
        for source in lineage.get(column.name.lower(), frozenset()):
            port = ports.get(source.port)
            if port is None or port.product is None or port.product not in upstream:
                continue
            parent = upstream[port.product]
            parent_column = parent.spec.schema_.column(source.column)
            if parent_column is None:
                continue
            level = parent.classification_of(parent_column)
            if parent_column.pii or _RANK[level] > _RANK[declared]:
                origins.add(f"{port.product}.{parent_column.name}")
            inherited = max(inherited, level, key=_RANK.__getitem__)
            inherited_pii = inherited_pii or parent_column.pii
        level = max(declared, inherited, key=_RANK.__getitem__)
        pii = column.pii or inherited_pii
        declassified = False
        if column.declassify is not None:
            lowered = max(declared, column.declassify.to, key=_RANK.__getitem__)
            declassified = _RANK[lowered] < _RANK[level] or pii != column.pii
            level, pii = lowered, column.pii
        result[column.name] = ColumnClass(
            classification=level,
            pii=pii,
            inherited_from=tuple(sorted(origins)),
            declassified=declassified,
        )
    return result
