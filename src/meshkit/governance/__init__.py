"""Federated computational governance: policies as code, evaluated on every validate and build.

Global policies live in mesh.yaml, domain policies in domain.yaml; built-in rules, Rego files and
Python plugins all produce Findings. See docs/governance.md.
"""

from __future__ import annotations

from meshkit.engines.registry import dialect_of
from meshkit.errors import MeshkitError
from meshkit.governance.engine import check_policies, column_classes, evaluate
from meshkit.governance.findings import Finding, Outcome, Violation
from meshkit.governance.lineage import product_lineage
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.lineage import LineageCache


def column_lineage_rows(
    mesh: Mesh, product: Product, *, lineage: LineageCache | None = None
) -> list[tuple[str, str, str, bool]]:
    """(column, source, classification, pii) rows for the catalog: one per input column each
    output column is computed from, named `<product id>.<column>` for a product input and
    `<port>.<column>` for a file or database input; a column computed from no input column (a
    literal, `count(*)`) gets one row with source ''. Derived lineage is remembered in
    `lineage`."""
    cache = lineage if lineage is not None else LineageCache()  # derived once for both
    classes = column_classes(mesh, product, lineage=cache)
    sources = _column_sources(mesh, product, cache)
    rows: list[tuple[str, str, str, bool]] = []
    for column in product.spec.schema_.columns:
        effective = classes.get(column.name)
        if effective is None:
            continue
        rows += [
            (column.name, src, str(effective.classification), effective.pii)
            for src in sources.get(column.name.lower()) or ("",)
        ]
    return rows


def _column_sources(
    mesh: Mesh, product: Product, cache: LineageCache | None
) -> dict[str, list[str]]:
    """Each output column's input columns, by lower-cased name. A transform whose lineage
    cannot be derived has none here (with product inputs, `column_classes` has already failed
    closed on it)."""
    upstream = {
        p.product: mesh.products[p.product]
        for p in product.spec.inputs
        if p.product is not None and p.product in mesh.products
    }
    try:
        derived = product_lineage(
            product, upstream, dialect=dialect_of(mesh.spec.settings.engine), cache=cache
        )
    except MeshkitError:
        return {}
    ports = {port.name: port for port in product.spec.inputs}
    out: dict[str, list[str]] = {}
    for name, found in derived.items():
        names = set()
        for source in found:
            port = ports.get(source.port)
            owner = port.product if port is not None and port.product else source.port
            names.add(f"{owner}.{source.column}")
        out[name.lower()] = sorted(names)
    return out


__all__ = [
    "Finding",
    "LineageCache",
    "Outcome",
    "Violation",
    "check_policies",
    "column_classes",
    "column_lineage_rows",
    "evaluate",
]
