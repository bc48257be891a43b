"""Federated computational governance: policies as code, evaluated on every validate and build.

Global policies live in mesh.yaml, domain policies in domain.yaml; built-in rules, Rego files and
Python plugins all produce Findings. See docs/governance.md.
"""

from __future__ import annotations

from meshkit.governance.engine import check_policies, column_classes, evaluate
from meshkit.governance.findings import Finding, Outcome, Violation
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.lineage import LineageCache


def column_lineage_rows(
    mesh: Mesh, product: Product, *, lineage: LineageCache | None = None
) -> list[tuple[str, str, str, bool]]:
    """(column, source, classification, pii) rows for the catalog; a column with no
    upstream source gets one row with source ''. Derived lineage is remembered in `lineage`."""
    classes = column_classes(mesh, product, lineage=lineage)
    rows: list[tuple[str, str, str, bool]] = []
    for column in product.spec.schema_.columns:
        effective = classes.get(column.name)
        if effective is None:
            continue
        sources = effective.inherited_from or ("",)
        rows += [
            (column.name, src, str(effective.classification), effective.pii) for src in sources
        ]
    return rows


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
