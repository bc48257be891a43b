"""The catalog: meshkit's metadata database (domains, products, versions, runs, quality, lineage,
policy results, tokens, access requests, the audit log).

``Catalog`` composes one repository per entity over one ``Backend``; see ``facade.py``. Only
``Catalog``, the record classes, the values handed to batch writes and ``RunStatus`` are
public, and ``meshkit.catalog.search`` (the product search); models and migrations are not.
"""

from meshkit.catalog.facade import Catalog
from meshkit.catalog.records import (
    ColumnLineageRecord,
    DomainRecord,
    LineageRecord,
    PolicyRecord,
    ProductRecord,
    QualityRecord,
    RunRecord,
    RunStatus,
    VersionRecord,
)
from meshkit.catalog.rows import PolicyEvaluation, ProductRow

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
    "RunStatus",
    "VersionRecord",
]
