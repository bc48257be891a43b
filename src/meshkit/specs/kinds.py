"""The top-level model of each spec kind, and `SPEC_KINDS`, which the loader and `meshkit
schema` go by.

`MeshSpec` (`mesh.yaml`: settings, governance, access) and `DomainSpec` (`domain.yaml`: owner,
members, domain policies) are here; `DataProductSpec` is in `product.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from meshkit.specs.access import AccessSettings
from meshkit.specs.models import NAME_PATTERN, DomainType, MeshSettings, Spec, no_duplicates
from meshkit.specs.policies import Governance, PolicySpec
from meshkit.specs.product import DataProductSpec


class MeshSpec(Spec):
    api_version: Literal["meshkit/v1"] = Field(alias="apiVersion")
    kind: Literal["Mesh"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    settings: MeshSettings = MeshSettings()
    governance: Governance = Field(default_factory=Governance)
    access: AccessSettings = Field(default_factory=AccessSettings)


class Member(Spec):
    name: str = Field(min_length=1, description="Person or service account, e.g. an email.")
    role: Literal["owner", "maintainer", "steward", "viewer"]


class DomainSpec(Spec):
    api_version: Literal["meshkit/v1"] = Field(alias="apiVersion")
    kind: Literal["Domain"]
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    type: DomainType
    owner: str = Field(min_length=1, description="The team that owns this domain.")
    members: list[Member] = Field(default=[])
    policies: list[PolicySpec] = Field(
        default_factory=list,
        description="Domain policies: new rules, or a global policy's name to make it stricter.",
    )

    @field_validator("policies")
    @classmethod
    def _unique_policy_names(cls, policies: list[PolicySpec]) -> list[PolicySpec]:
        no_duplicates([p.name for p in policies], "policy")
        return policies


SPEC_KINDS: dict[str, type[Spec]] = {
    "Mesh": MeshSpec,
    "Domain": DomainSpec,
    "DataProduct": DataProductSpec,
}
