"""meshkit: a self-serve data mesh platform.

Data products are declared as code, built behind their contracts (write-audit-publish) and
published as versioned Delta tables, with a catalog of owners, versions, quality and lineage.
"""

from meshkit.client import Client, connect
from meshkit.errors import (
    AccessDenied,
    AuthError,
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
    "AccessDenied",
    "AuthError",
    "BuildError",
    "CatalogError",
    "Client",
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
    "connect",
]
