"""Values handed to the catalog's batch writes (one transaction for many products)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProductRow:
    """A product's catalog row, as `catalog.products.upsert` registers it."""

    id: str
    domain: str
    name: str
    version: str
    status: str
    description: str
    tags: list[str]
    owners: dict[str, Any]
    spec: dict[str, Any]
    spec_hash: str


@dataclass(frozen=True)
class PolicyEvaluation:
    """One product version's policy results (`Finding.to_dict()` shapes), as
    `catalog.policies.record` stores them."""

    product_id: str
    semver: str
    spec_hash: str
    results: Sequence[Mapping[str, Any]]
