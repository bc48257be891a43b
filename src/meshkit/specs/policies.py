"""The governance keys of the specs: policies, their scope and enforcement, waivers, and
declassification.

`mesh.yaml` declares the governance group and the global policies, a domain may add or tighten
policies, and a product may carry time-limited waivers and declassify a column. The governance
package (`meshkit.governance`) evaluates them; these models only say what may be written.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from meshkit.specs.models import Classification, Lifecycle, Spec, no_duplicates


class Enforcement(StrEnum):
    REQUIRED = "required"  # a failure blocks validate and build
    RECOMMENDED = "recommended"  # a failure warns
    OPTIONAL = "optional"  # a failure is only reported


class PolicyScope(Spec):
    """Which products a policy applies to; an empty list means no restriction."""

    domains: list[str] = Field(default_factory=list, description="Only products of these domains.")
    tags: list[str] = Field(
        default_factory=list, description="Only products with any of these tags."
    )
    statuses: list[Lifecycle] = Field(
        default_factory=list, description="Only products in these lifecycle statuses."
    )


class PolicySpec(Spec):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Unique within its file.")
    description: str = ""
    rule: str | None = Field(
        None,
        description="A built-in rule (see docs/governance.md) or 'plugin:<entry point name>'.",
    )
    rego: str | None = Field(
        None, description="A .rego file (relative to the file declaring the policy)."
    )
    enforcement: Enforcement = Enforcement.REQUIRED
    scope: PolicyScope = Field(default_factory=PolicyScope)
    params: dict[str, Any] = Field(default_factory=dict, description="The rule's parameters.")

    @model_validator(mode="after")
    def _rule_or_rego(self) -> PolicySpec:
        if (self.rule is None) == (self.rego is None):
            raise ValueError("a policy needs exactly one of 'rule' or 'rego'")
        return self


class Governance(Spec):
    group: list[str] = Field(
        default_factory=list,
        description="The governance group: who may approve waivers.",
    )
    policies: list[PolicySpec] = Field(default_factory=list, description="Global policies.")

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, policies: list[PolicySpec]) -> list[PolicySpec]:
        no_duplicates([p.name for p in policies], "policy")
        return policies


class Declassify(Spec):
    to: Classification
    reason: str = Field(min_length=10, description="Why it is safe, e.g. 'SHA-256 hash'.")


class Waiver(Spec):
    policy: str = Field(description="The name of the policy waived.")
    reason: str = Field(min_length=10)
    approver: str = Field(description="A member of the governance group (mesh.yaml).")
    expires: date = Field(description="Last day the waiver applies (UTC).")
