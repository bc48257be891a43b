"""What a failed check shows: a few of its failing rows, never a PII or restricted value.

Only columns that are neither PII nor classified restricted appear; values are made JSON-safe
(the catalog stores them, the CLI and the API show them).
"""

from __future__ import annotations

import math
from typing import Any

from meshkit.builder.quality.base import Check
from meshkit.engines.base import Session
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification

SAMPLE_ROWS = 5


def safe_columns(product: Product) -> list[str]:
    """Columns whose values may appear in reports: not PII, not restricted."""
    return [
        c.name
        for c in product.spec.schema_.columns
        if not c.pii and product.classification_of(c) != Classification.RESTRICTED
    ]


def samples(product: Product, session: Session, check: Check) -> list[dict[str, Any]]:
    """Up to `SAMPLE_ROWS` failing rows of `check`, showing only the product's safe columns."""
    shown = safe_columns(product)
    query = check.sample_query(shown) if shown else None
    if query is None:
        return []
    return jsonable(session.fetch(query.limit(SAMPLE_ROWS)).to_pylist())


def jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        return str(value)

    return [{k: convert(v) for k, v in row.items()} for row in rows]
