"""Who is asking: principals from mesh.yaml and domain.yaml, resolved into a `Caller`.

Nothing here trusts a name on its own: the API turns a token into a principal's name
(`tokens.authenticate`), and only then is the name resolved against the specs. A name the
specs do not know is refused, so a token outlives nobody who was removed from the mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshkit.errors import AccessDenied
from meshkit.specs.mesh import Mesh
from meshkit.specs.models import Classification

PRODUCT_PREFIX = "product:"
_LEVELS = {c: i for i, c in enumerate(Classification)}


def level(classification: Classification) -> int:
    """public < internal < confidential < restricted."""
    return _LEVELS[classification]


@dataclass(frozen=True)
class Caller:
    """A resolved principal: what access decisions are made about."""

    name: str
    kind: str  # user | service | product | local
    clearance: Classification = Classification.INTERNAL
    attributes: Mapping[str, Any] = field(default_factory=dict)
    domains: frozenset[str] = frozenset()  # domains it is a member of (a product: its own)
    owns: frozenset[str] = frozenset()  # domains where it has the role owner
    admin: bool = False
    governance: bool = False
    trusted: bool = False  # the local operator: reads files anyway, so sees data unmasked

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "clearance": str(self.clearance),
            "attributes": dict(self.attributes),
            "domains": sorted(self.domains),
            "owns": sorted(self.owns),
            "admin": self.admin,
            "governance": self.governance,
        }


LOCAL = Caller(name="local", kind="local", clearance=Classification.RESTRICTED, trusted=True)
"""The operator of the local CLI, who can read the warehouse's files directly anyway."""


def known_principals(mesh: Mesh) -> set[str]:
    """Every name a token may be created for."""
    names = {p.name for p in mesh.spec.access.principals}
    names.update(mesh.spec.access.admins)
    names.update(mesh.spec.governance.group)
    for domain in mesh.domains.values():
        names.update(m.name for m in domain.spec.members)
    names.update(PRODUCT_PREFIX + pid for pid in mesh.products)
    return names


def resolve(mesh: Mesh, name: str) -> Caller:
    """The Caller named `name`; AccessDenied when the specs do not know it."""
    declared = next((p for p in mesh.spec.access.principals if p.name == name), None)
    if name.startswith(PRODUCT_PREFIX):
        # a product reading another: its builds run as it, with its own domain's rights
        product = mesh.products.get(name.removeprefix(PRODUCT_PREFIX))
        if product is None:
            raise AccessDenied(f"unknown principal {name!r}", hint=_KNOWN_HINT)
        return Caller(
            name=name,
            kind="product",
            clearance=declared.clearance if declared is not None else Classification.INTERNAL,
            attributes=dict(declared.attributes) if declared is not None else {},
            domains=frozenset({product.domain}),
        )
    if name not in known_principals(mesh):
        raise AccessDenied(f"unknown principal {name!r}", hint=_KNOWN_HINT)
    domains = {d.name for d in mesh.domains.values() if any(m.name == name for m in d.spec.members)}
    owns = {
        d.name
        for d in mesh.domains.values()
        if any(m.name == name and m.role == "owner" for m in d.spec.members)
    }
    return Caller(
        name=name,
        kind=declared.kind if declared is not None else "user",
        clearance=declared.clearance if declared is not None else Classification.INTERNAL,
        attributes=dict(declared.attributes) if declared is not None else {},
        domains=frozenset(domains),
        owns=frozenset(owns),
        admin=name in mesh.spec.access.admins,
        governance=name in mesh.spec.governance.group,
    )


_KNOWN_HINT = (
    "principals are the members of domains (domain.yaml), access.principals and access.admins "
    "(mesh.yaml), the governance group, and product:<domain>.<name>"
)
