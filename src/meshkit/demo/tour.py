"""The access part of `meshkit demo`: a consumer from sales asks the customer domain for
its customers, an owner approves, and the consumer's query comes back masked and filtered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa

from meshkit.access.audit import Verification
from meshkit.catalog.access import RequestRecord
from meshkit.workspace import Workspace

CONSUMER = "lena.schmidt@example.com"  # sales, clearance internal, region EUROPE
OWNER = "maria.gonzalez@example.com"  # owner of the customer domain
SQL = (
    "select customer_key, customer_name, phone, address, region, account_balance "
    "from customer.customers order by customer_key limit 5"
)


@dataclass(frozen=True)
class Tour:
    request: RequestRecord
    sql: str
    as_owner: pa.Table
    as_consumer: pa.Table
    masked: list[str]
    audit: Verification


def access_tour(ws: Workspace) -> Tour:
    consumer, owner = ws.access.caller(CONSUMER), ws.access.caller(OWNER)
    request = ws.access.request(
        consumer,
        "customer.customers",
        purpose="plan the European sales territories",
        until=ws.now() + timedelta(days=30),
    )
    request = ws.access.approve(owner, request.id, "territory planning is a listed purpose")
    result = ws.access.query(consumer, SQL)
    return Tour(
        request=request,
        sql=SQL,
        as_owner=ws.access.query(owner, SQL).table,
        as_consumer=result.table,
        masked=result.masked.get("customer.customers", []),
        audit=ws.verify_audit(),
    )
