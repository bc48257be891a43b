"""The catalog: meshkit's metadata database (domains, products, versions, runs, quality, lineage).

Only ``Catalog`` and the record classes are public; models and migrations are internal.
"""

from meshkit.catalog.records import (
    DomainRecord,
    LineageRecord,
    ProductRecord,
    QualityRecord,
    RunRecord,
    VersionRecord,
)
from meshkit.catalog.store import Catalog

__all__ = [
    "Catalog",
    "DomainRecord",
    "LineageRecord",
    "ProductRecord",
    "QualityRecord",
    "RunRecord",
    "VersionRecord",
]
