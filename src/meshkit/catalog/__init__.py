"""The catalog: meshkit's metadata database (domains, products, versions, runs, quality, lineage,
policy results).

Only ``Catalog`` and the record classes are public; models and migrations are internal.
"""

from meshkit.catalog.records import (
    ColumnLineageRecord,
    DomainRecord,
    LineageRecord,
    PolicyRecord,
    ProductRecord,
    QualityRecord,
    RunRecord,
    VersionRecord,
)
from meshkit.catalog.rows import PolicyEvaluation, ProductRow
from meshkit.catalog.store import Catalog

__all__ = [
    "Catalog",
    "ColumnLineageRecord",
    "DomainRecord",
    "LineageRecord",
    "PolicyEvaluation",
    "PolicyRecord",
    "ProductRecord",
    "ProductRow",
    "QualityRecord",
    "RunRecord",
    "VersionRecord",
]
