"""Who may do what: the platform's actions, named, with the one rule that decides each
(`RULES`), and what a caller may see of a product's records (`Visibility`).

Every frontend (the API, the CLI acting `--as` someone, later the portal) and
`AccessControl` ask `Permissions.allowed(caller, action, resource)` instead of deciding for
themselves. Fail closed: an action the table does not name, or a resource of the wrong kind,
is denied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from meshkit.access.identity import Caller
from meshkit.catalog.access import RequestRecord, TokenRecord
from meshkit.errors import AccessDenied
from meshkit.specs.mesh import Product
from meshkit.specs.models import Classification


class Action(StrEnum):
    """Everything the platform decides about, by name."""

    READ_PRODUCT = "product.read"
    READ_DETAILS = "product.details"
    QUERY = "product.query"
    REQUEST_ACCESS = "access.request"
    REQUEST_FOR = "access.request_for"
    DECIDE = "access.decide"
    CREATE_TOKEN = "token.create"
    LIST_TOKENS = "token.list_all"
    REVOKE_TOKEN = "token.revoke"
    READ_AUDIT = "audit.read"


Grants = Callable[[str, str], Sequence[RequestRecord]]
"""The grants in force of a consumer (by name) on a product (by id)."""


@dataclass(frozen=True)
class Rule:
    """One action's decision: what it is about, who may, and what a refusal says when the
    caller is not told anything more specific."""

    resource: type | None  # the kind of resource the action is about; None: none at all
    check: Callable[[Caller, Any, Grants], bool]
    refusal: str
    description: str


def _member(caller: Caller, product: Product) -> bool:
    """The local operator, or a member of the product's domain."""
    return caller.trusted or product.domain in caller.domains


def _reads(caller: Caller, product: Product, grants: Grants) -> bool:
    # cheapest first: only a restricted product outside the caller's domains asks for grants
    if _member(caller, product) or caller.admin:
        return True
    if product.spec.classification != Classification.RESTRICTED:
        return True
    return bool(grants(caller.name, product.id))


def _queries(caller: Caller, product: Product, grants: Grants) -> bool:
    return _member(caller, product) or bool(grants(caller.name, product.id))


def _requests_for(caller: Caller, consumer: Caller, _: Grants) -> bool:
    """For oneself anyone may; for another principal only for a product of one's domains."""
    if caller.trusted or consumer.name == caller.name:
        return True
    return consumer.kind == "product" and bool(consumer.domains & caller.domains)


def _decides(caller: Caller, product: Product, _: Grants) -> bool:
    return caller.trusted or product.domain in caller.owns


def _platform(caller: Caller, _: object, __: Grants) -> bool:
    return caller.trusted or caller.admin


def _revokes(caller: Caller, token: TokenRecord, _: Grants) -> bool:
    return caller.trusted or caller.admin or token.principal == caller.name


def _audits(caller: Caller, _: object, __: Grants) -> bool:
    return caller.trusted or caller.admin or caller.governance


RULES: Mapping[str, Rule] = {
    Action.READ_PRODUCT: Rule(
        Product,
        _reads,
        "no access to this product, or no such product",
        "See a product and read its metadata: spec, schema, versions, runs and quality "
        "(without details), lineage. Everyone, except for a restricted product: its domain's "
        "members, admins and consumers with a grant in force.",
    ),
    Action.READ_DETAILS: Rule(
        Product,
        lambda c, p, _: _member(c, p),
        "only members of the owning domain see run errors and quality details",
        "See the details of its runs (error texts, hosts, process ids) and quality results "
        "(measured values, thresholds, messages, failing rows): members of its domain.",
    ),
    Action.QUERY: Rule(
        Product,
        _queries,
        "you have no grant on this product",
        "Query its rows: members of its domain as they are; anyone else with a grant in "
        "force, masked and filtered.",
    ),
    Action.REQUEST_ACCESS: Rule(
        Product,
        _reads,
        "no access to this product, or no such product",
        "Ask its owners for a grant: whoever may see it.",
    ),
    Action.REQUEST_FOR: Rule(
        Caller,
        _requests_for,
        "you cannot request access on behalf of this principal",
        "Ask for a grant for another principal (the resource): only for a product of a "
        "domain one is a member of.",
    ),
    Action.DECIDE: Rule(
        Product,
        _decides,
        "only owners of the product's domain decide its requests",
        "Approve, deny or revoke requests for it: owners of its domain.",
    ),
    Action.CREATE_TOKEN: Rule(
        str,
        _platform,
        "only mesh admins create tokens for others",
        "Create a token for a principal (the resource, by name): mesh admins.",
    ),
    Action.LIST_TOKENS: Rule(
        None,
        _platform,
        "only mesh admins list everyone's tokens",
        "List every principal's tokens (anyone lists their own): mesh admins.",
    ),
    Action.REVOKE_TOKEN: Rule(
        TokenRecord,
        _revokes,
        "only mesh admins revoke others' tokens",
        "Revoke a token (the resource): its principal and mesh admins.",
    ),
    Action.READ_AUDIT: Rule(
        None,
        _audits,
        "only mesh admins and the governance group read the audit log",
        "Read and verify the audit log: mesh admins and the governance group.",
    ),
}


class Edge(Protocol):
    """A lineage edge as the catalog records it."""

    @property
    def target(self) -> str: ...
    @property
    def source_kind(self) -> str: ...
    @property
    def source(self) -> str: ...


E = TypeVar("E", bound=Edge)


class ColumnSource(Protocol):
    """A row of column lineage as the catalog records it."""

    @property
    def source(self) -> str: ...


C = TypeVar("C", bound=ColumnSource)

_PRIVATE_RUN_FIELDS = frozenset({"error", "host", "pid"})
_PUBLIC_CHECK_FIELDS = frozenset({"check_name", "check_type", "column", "severity", "passed"})


@dataclass(frozen=True)
class Visibility:
    """What one caller may see of one product's catalog records. Without `details`, runs
    lose their error texts, hosts and process ids, and quality results keep only which
    checks passed (measured values, messages and samples are unmasked, unfiltered data)."""

    details: bool

    def run(self, run: Mapping[str, Any]) -> dict[str, Any]:
        if self.details:
            return dict(run)
        return {k: v for k, v in run.items() if k not in _PRIVATE_RUN_FIELDS}

    def check(self, result: Mapping[str, Any]) -> dict[str, Any]:
        if self.details:
            return dict(result)
        return {k: v for k, v in result.items() if k in _PUBLIC_CHECK_FIELDS}


class Permissions:
    """The table of `RULES` over one mesh's grants."""

    def __init__(self, grants: Grants) -> None:
        self.grants = grants

    def allowed(self, caller: Caller, action: str, resource: object = None) -> bool:
        """Whether `caller` may do `action` (on `resource`). Unknown actions, and resources
        not of the kind the action is about, are denied."""
        rule = RULES.get(action)
        if rule is None:
            return False
        if rule.resource is None and resource is not None:
            return False
        if rule.resource is not None and not isinstance(resource, rule.resource):
            return False
        return rule.check(caller, resource, self.grants)

    def require(self, caller: Caller, action: str, resource: object = None) -> None:
        """`allowed`, or AccessDenied with the rule's refusal."""
        if not self.allowed(caller, action, resource):
            rule = RULES.get(action)
            raise AccessDenied(rule.refusal if rule else f"unknown action {action!r}: denied")

    def visible(self, caller: Caller, products: Iterable[Product]) -> list[Product]:
        """The products `caller` may see, in the order given."""
        return [p for p in products if self.allowed(caller, Action.READ_PRODUCT, p)]

    def visibility(self, caller: Caller, product: Product) -> Visibility:
        return Visibility(details=self.allowed(caller, Action.READ_DETAILS, product))

    def granted_columns(self, caller: Caller, product: Product) -> list[str] | None:
        """The columns `caller` may query: None for all (members of its domain, or a grant
        of every column); else the union of the columns its grants name."""
        if _member(caller, product):
            return None
        grants = self.grants(caller.name, product.id)
        if grants and all(g.columns is not None for g in grants):
            return sorted({c for g in grants for c in g.columns or []})
        return None if grants else []

    @staticmethod
    def edges(edges: Iterable[E], visible: set[str]) -> list[E]:
        """The lineage edges between what the caller sees: an edge from or to a product it
        may not see is left out (a file or database source shows as it is)."""
        return [
            e
            for e in edges
            if (e.source_kind != "product" or e.source in visible) and e.target in visible
        ]

    @staticmethod
    def column_sources(rows: Iterable[C], visible: set[str], products: Iterable[str]) -> list[C]:
        """The column lineage the caller may see: a row whose source is a column of a
        product it may not see is left out (a file or database input's column shows)."""
        known = set(products)

        def shown(source: str) -> bool:
            owner = source.rpartition(".")[0]
            return owner not in known or owner in visible

        return [r for r in rows if shown(r.source)]


__all__ = ["RULES", "Action", "Grants", "Permissions", "Rule", "Visibility"]
