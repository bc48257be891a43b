"""Specs as code: the models, the loader that locates every error, and cross-file checks."""

from meshkit.spec.loader import find_root, load_mesh
from meshkit.spec.mesh import Domain, Mesh, Product
from meshkit.spec.models import DataProductSpec, DomainSpec, MeshSpec

__all__ = [
    "DataProductSpec",
    "Domain",
    "DomainSpec",
    "Mesh",
    "MeshSpec",
    "Product",
    "find_root",
    "load_mesh",
]
