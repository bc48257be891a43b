"""Specs as code: the models, the loader that locates every error, and cross-file checks."""

from meshkit.specs.kinds import DomainSpec, MeshSpec
from meshkit.specs.loader import find_root, load_mesh
from meshkit.specs.mesh import Domain, Mesh, Product
from meshkit.specs.product import DataProductSpec

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
