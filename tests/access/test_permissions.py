"""`Permissions.allowed` over the whole action table, for each kind of caller, without a
catalog: grants come from a dict. Unknown actions and wrong resources are denied."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from meshkit.access.identity import LOCAL, Caller
from meshkit.access.permissions import RULES, Action, Permissions, Visibility
from meshkit.catalog.access import RequestRecord, TokenRecord
from meshkit.catalog.records import ColumnLineageRecord, LineageRecord
from meshkit.demo import example_mesh_path
from meshkit.errors import AccessDenied
from meshkit.specs import Product, load_mesh
from meshkit.specs.models import Classification

NOW = datetime(2026, 12, 7, tzinfo=UTC)
MEMBER = Caller("tom.becker@example.com", "user", domains=frozenset({"customer"}))
OWNER = Caller(
    "maria.gonzalez@example.com",
    "user",
    domains=frozenset({"customer"}),
    owns=frozenset({"customer"}),
)
OUTSIDER = Caller("kenji.watanabe@example.com", "user", domains=frozenset({"sales"}))
GRANTEE = Caller("lena.schmidt@example.com", "user", domains=frozenset({"sales"}))
ADMIN = Caller("platform-team@example.com", "user", admin=True)
GOVERNANCE = Caller("governance-board@example.com", "user", governance=True)
SALES_PRODUCT = Caller("product:sales.orders", "product", domains=frozenset({"sales"}))
CUSTOMER_PRODUCT = Caller("product:customer.contacts", "product", domains=frozenset({"customer"}))


def _grant(consumer: str, product: str, columns: list[str] | None) -> RequestRecord:
    return RequestRecord(
        id=f"g-{consumer}-{len(columns or [])}",
        product_id=product,
        consumer=consumer,
        requested_by=consumer,
        purpose="regional sales planning",
        columns=columns,
        ends_at=NOW + timedelta(days=30),
        status="approved",
        auto=False,
        decided_by=OWNER.name,
        decided_at=NOW,
        reason=None,
        created_at=NOW,
    )


@pytest.fixture(scope="module")
def products() -> dict[str, Product]:
    mesh = load_mesh(example_mesh_path())
    customers = mesh.products["customer.customers"]
    restricted = dataclasses.replace(
        customers,
        spec=customers.spec.model_copy(update={"classification": Classification.RESTRICTED}),
    )
    return {"internal": customers, "restricted": restricted}


@pytest.fixture
def granted() -> dict[tuple[str, str], list[RequestRecord]]:
    return {
        (GRANTEE.name, "customer.customers"): [_grant(GRANTEE.name, "customer.customers", None)]
    }


@pytest.fixture
def permissions(granted: dict[tuple[str, str], list[RequestRecord]]) -> Permissions:
    def grants(consumer: str, product: str) -> Sequence[RequestRecord]:
        return granted.get((consumer, product), [])

    return Permissions(grants)


def _token(principal: str) -> TokenRecord:
    return TokenRecord(
        id="t1",
        principal=principal,
        secret_hash="x",
        description="",
        created_by="local",
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
        revoked_at=None,
    )


# (action, resource key, who is allowed); everyone else of CALLERS is denied
CALLERS = {
    "local": LOCAL,
    "member": MEMBER,
    "owner": OWNER,
    "outsider": OUTSIDER,
    "grantee": GRANTEE,
    "admin": ADMIN,
    "governance": GOVERNANCE,
}
EVERYONE = set(CALLERS)
TABLE = [
    (Action.READ_PRODUCT, "internal", EVERYONE),
    (Action.READ_PRODUCT, "restricted", {"local", "member", "owner", "grantee", "admin"}),
    (Action.READ_DETAILS, "internal", {"local", "member", "owner"}),
    (Action.READ_DETAILS, "restricted", {"local", "member", "owner"}),
    (Action.QUERY, "internal", {"local", "member", "owner", "grantee"}),
    (Action.QUERY, "restricted", {"local", "member", "owner", "grantee"}),
    (Action.REQUEST_ACCESS, "internal", EVERYONE),
    (Action.REQUEST_ACCESS, "restricted", {"local", "member", "owner", "grantee", "admin"}),
    (Action.DECIDE, "internal", {"local", "owner"}),
    (Action.DECIDE, "restricted", {"local", "owner"}),
    (Action.CREATE_TOKEN, "principal", {"local", "admin"}),
    (Action.LIST_TOKENS, None, {"local", "admin"}),
    (Action.REVOKE_TOKEN, "outsider's token", {"local", "admin", "outsider"}),
    (Action.READ_AUDIT, None, {"local", "admin", "governance"}),
]


def _resource(key: str | None, products: dict[str, Product]) -> object:
    if key in products:
        return products[key]
    if key == "principal":
        return OUTSIDER.name
    if key == "outsider's token":
        return _token(OUTSIDER.name)
    return None


def test_the_table_covers_every_action() -> None:
    assert set(RULES) == set(Action)
    assert {action for action, _, _ in TABLE} | {Action.REQUEST_FOR} == set(Action)


def _id(value: object) -> str:
    return "+".join(sorted(value)) if isinstance(value, set) else str(value)


@pytest.mark.parametrize(("action", "key", "allowed"), TABLE, ids=_id)
def test_allowed(
    permissions: Permissions,
    products: dict[str, Product],
    action: Action,
    key: str | None,
    allowed: set[str],
) -> None:
    resource = _resource(key, products)
    decided = {name for name, who in CALLERS.items() if permissions.allowed(who, action, resource)}
    assert decided == allowed


def test_requesting_for_another_principal(permissions: Permissions) -> None:
    assert permissions.allowed(OUTSIDER, Action.REQUEST_FOR, OUTSIDER)  # for oneself
    assert permissions.allowed(OUTSIDER, Action.REQUEST_FOR, SALES_PRODUCT)  # its domain's product
    assert not permissions.allowed(OUTSIDER, Action.REQUEST_FOR, CUSTOMER_PRODUCT)
    assert not permissions.allowed(OUTSIDER, Action.REQUEST_FOR, GRANTEE)  # another person
    assert not permissions.allowed(ADMIN, Action.REQUEST_FOR, SALES_PRODUCT)
    assert permissions.allowed(LOCAL, Action.REQUEST_FOR, GRANTEE)


def test_unknown_actions_and_wrong_resources_are_denied(
    permissions: Permissions, products: dict[str, Product]
) -> None:
    assert not permissions.allowed(LOCAL, "product.delete", products["internal"])
    assert not permissions.allowed(LOCAL, "", None)
    assert not permissions.allowed(LOCAL, Action.READ_PRODUCT, "customer.customers")  # an id
    assert not permissions.allowed(LOCAL, Action.READ_PRODUCT, None)
    assert not permissions.allowed(LOCAL, Action.READ_AUDIT, products["internal"])
    assert not permissions.allowed(LOCAL, Action.REVOKE_TOKEN, "t1")
    with pytest.raises(AccessDenied) as refused:
        permissions.require(LOCAL, "product.delete")
    assert refused.value.message == "unknown action 'product.delete': denied"


def test_require_says_the_rules_refusal(permissions: Permissions) -> None:
    permissions.require(ADMIN, Action.READ_AUDIT)
    with pytest.raises(AccessDenied) as refused:
        permissions.require(OUTSIDER, Action.READ_AUDIT)
    assert refused.value.message == "only mesh admins and the governance group read the audit log"
    with pytest.raises(AccessDenied, match="only mesh admins create tokens for others"):
        permissions.require(OUTSIDER, Action.CREATE_TOKEN, OUTSIDER.name)


def test_granted_columns(
    permissions: Permissions,
    products: dict[str, Product],
    granted: dict[tuple[str, str], list[RequestRecord]],
) -> None:
    customers = products["internal"]
    assert permissions.granted_columns(MEMBER, customers) is None
    assert permissions.granted_columns(GRANTEE, customers) is None  # a grant of every column
    assert permissions.granted_columns(OUTSIDER, customers) == []
    granted[(OUTSIDER.name, customers.id)] = [
        _grant(OUTSIDER.name, customers.id, ["region", "nation"]),
        _grant(OUTSIDER.name, customers.id, ["customer_key"]),
    ]
    assert permissions.granted_columns(OUTSIDER, customers) == ["customer_key", "nation", "region"]
    granted[(OUTSIDER.name, customers.id)].append(_grant(OUTSIDER.name, customers.id, None))
    assert permissions.granted_columns(OUTSIDER, customers) is None


def test_visible_products_keep_their_order(
    permissions: Permissions, products: dict[str, Product]
) -> None:
    both = [products["restricted"], products["internal"]]
    assert permissions.visible(OUTSIDER, both) == [products["internal"]]
    assert permissions.visible(GRANTEE, both) == both


def test_visibility_of_runs_and_quality(
    permissions: Permissions, products: dict[str, Product]
) -> None:
    run = {"id": "r1", "status": "failed", "error": "boom at /srv", "host": "h", "pid": 7}
    check = {
        "check_name": "not_null",
        "check_type": "not_null",
        "column": "c",
        "severity": "error",
        "passed": False,
        "measured": 3,
        "threshold": 0,
        "message": "3 NULLs",
        "samples": [{"c": None}],
    }
    outside = permissions.visibility(OUTSIDER, products["internal"])
    assert outside == Visibility(details=False)
    assert outside.run(run) == {"id": "r1", "status": "failed"}
    assert set(outside.check(check)) == {"check_name", "check_type", "column", "severity", "passed"}
    inside = permissions.visibility(MEMBER, products["internal"])
    assert inside.run(run) == run
    assert inside.check(check) == check


def test_lineage_edges_between_visible_products() -> None:
    edges = [
        LineageRecord("sales.orders", "product", "customer.customers", NOW),
        LineageRecord("sales.orders", "file", "data/orders.parquet", NOW),
        LineageRecord("sales.orders", "product", "finance.secret", NOW),
        LineageRecord("finance.secret", "product", "sales.orders", NOW),
    ]
    shown = Permissions.edges(edges, {"sales.orders", "customer.customers"})
    assert shown == edges[:2]


def test_column_lineage_hides_the_columns_of_products_the_caller_may_not_see() -> None:
    rows = [
        ColumnLineageRecord(
            "sales.orders", "customer_key", "customer.customers.customer_key", "internal", False
        ),
        ColumnLineageRecord("sales.orders", "amount", "finance.ledger.amount", "restricted", False),
        ColumnLineageRecord("sales.orders", "order_key", "raw.o_orderkey", "internal", False),
        ColumnLineageRecord("sales.orders", "lines", "", "internal", False),
    ]
    products = ["sales.orders", "customer.customers", "finance.ledger"]
    shown = Permissions.column_sources(rows, {"sales.orders", "customer.customers"}, products)
    assert [r.column for r in shown] == ["customer_key", "order_key", "lines"]
