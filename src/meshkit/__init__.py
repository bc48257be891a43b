"""meshkit: a self-serve data mesh platform.

Data products are declared as code, built behind their contracts (write-audit-publish) and
published as versioned Delta tables, with a catalog of owners, versions, quality and lineage.
"""

from meshkit.errors import (
    BuildError,
    CatalogError,
    ConflictError,
    ContractError,
    InputError,
    MeshkitError,
    NotFoundError,
    Problem,
    QualityGateError,
    SpecError,
)
from meshkit.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "BuildError",
    "CatalogError",
    "ConflictError",
    "ContractError",
    "InputError",
    "MeshkitError",
    "NotFoundError",
    "Problem",
    "QualityGateError",
    "SpecError",
    "Workspace",
    "__version__",
]
