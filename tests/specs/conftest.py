"""A small valid mesh for the spec tests, built fresh in tmp_path for every test.

    mesh.yaml
    data/orders.parquet                       (one row, written with DuckDB)
    domains/sales/domain.yaml
    domains/sales/products/orders/            file input -> sales.orders
    domains/sales/products/daily_revenue/     reads sales.orders
    domains/analytics/domain.yaml
    domains/analytics/products/revenue_summary/   reads sales.daily_revenue

The malformed-spec tests assert exact line and column numbers in these files, so edit the texts
below with care (append rather than insert).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

MESH_YAML = """\
apiVersion: meshkit/v1
kind: Mesh
name: test-mesh
description: A small mesh for the spec tests.
settings:
  warehouse: warehouse
"""

SALES_DOMAIN_YAML = """\
apiVersion: meshkit/v1
kind: Domain
name: sales
description: Orders and the revenue they bring.
type: source-aligned
owner: sales-team
members:
  - name: alice@example.com
    role: owner
"""

ANALYTICS_DOMAIN_YAML = """\
apiVersion: meshkit/v1
kind: Domain
name: analytics
description: Company-wide figures built from other domains.
type: aggregate
owner: analytics-team
"""

ORDERS_YAML = """\
apiVersion: meshkit/v1
kind: DataProduct
name: orders
domain: sales
version: 1.0.0
status: active
description: One row per order placed in the shop.
tags: [sales, orders]
owner:
  technical: alice@example.com
  business: bob@example.com
classification: internal
inputs:
  - name: raw_orders
    file: data/orders.parquet
transform:
  sql: transform.sql
schema:
  columns:
    - name: order_id
      type: BIGINT
      nullable: false
      primary_key: true
    - name: customer_id
      type: BIGINT
    - name: amount
      type: DECIMAL(10,2)
    - name: status
      type: VARCHAR
    - name: email
      type: VARCHAR
      pii: true
    - name: ordered_at
      type: TIMESTAMP
quality:
  - type: row_count
    min: 1
    max: 1000
  - type: null_fraction
    column: customer_id
    max: 0.1
  - type: pattern
    column: email
    pattern: '^[^@]+@[^@]+$'
  - type: unique
    columns: [order_id]
  - type: freshness
    column: ordered_at
    max_age: 7d
slo:
  freshness:
    max_age: 1d
schedule:
  cron: "0 6 * * *"
  timezone: Europe/Berlin
"""

ORDERS_SQL = """\
-- Orders as the shop exports them.
SELECT
    order_id,
    customer_id,
    amount,
    status,
    email,
    ordered_at
FROM raw_orders
"""

DAILY_REVENUE_YAML = """\
apiVersion: meshkit/v1
kind: DataProduct
name: daily_revenue
version: 0.2.0
description: Revenue per day.
owner:
  technical: alice@example.com
  business: carol@example.com
inputs:
  - name: orders
    product: sales.orders
transform:
  sql: transform.sql
schema:
  columns:
    - name: day
      type: DATE
      nullable: false
    - name: revenue
      type: DECIMAL(38,2)
"""

DAILY_REVENUE_SQL = """\
SELECT
    CAST(ordered_at AS DATE) AS day,
    SUM(amount) AS revenue
FROM orders
GROUP BY 1
"""

SUMMARY_YAML = """\
apiVersion: meshkit/v1
kind: DataProduct
name: revenue_summary
version: 0.1.0
description: Total revenue over all days.
owner:
  technical: dave@example.com
  business: erin@example.com
inputs:
  - name: daily
    product: sales.daily_revenue
transform:
  sql: transform.sql
schema:
  columns:
    - name: days
      type: BIGINT
    - name: total_revenue
      type: DECIMAL(38,2)
"""

SUMMARY_SQL = """\
SELECT
    COUNT(*) AS days,
    SUM(revenue) AS total_revenue
FROM daily
"""

FILES = {
    "mesh.yaml": MESH_YAML,
    "domains/sales/domain.yaml": SALES_DOMAIN_YAML,
    "domains/sales/products/orders/dataproduct.yaml": ORDERS_YAML,
    "domains/sales/products/orders/transform.sql": ORDERS_SQL,
    "domains/sales/products/daily_revenue/dataproduct.yaml": DAILY_REVENUE_YAML,
    "domains/sales/products/daily_revenue/transform.sql": DAILY_REVENUE_SQL,
    "domains/analytics/domain.yaml": ANALYTICS_DOMAIN_YAML,
    "domains/analytics/products/revenue_summary/dataproduct.yaml": SUMMARY_YAML,
    "domains/analytics/products/revenue_summary/transform.sql": SUMMARY_SQL,
}


def write_orders_parquet(path: Path) -> None:
    """One order, with exactly the column types the orders transform passes through."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute(
            f"""
            COPY (
                SELECT
                    1::BIGINT AS order_id,
                    7::BIGINT AS customer_id,
                    19.99::DECIMAL(10,2) AS amount,
                    'paid' AS status,
                    'a@example.com' AS email,
                    TIMESTAMP '2024-01-02 03:04:05' AS ordered_at
            ) TO '{path}' (FORMAT parquet)
            """
        )
    finally:
        con.close()


def build_mesh(root: Path) -> Path:
    """Write the valid test mesh under `root` and return `root`."""
    for relative, text in FILES.items():
        file = root / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    write_orders_parquet(root / "data" / "orders.parquet")
    return root


@pytest.fixture
def mesh_root(tmp_path: Path) -> Path:
    """A fresh copy of the valid test mesh."""
    return build_mesh(tmp_path / "mesh")


RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_meshkit(tmp_path: Path) -> RunMeshkit:
    """Run the real CLI (`python -m meshkit ARGS...`) in a subprocess, capturing its output."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
        return subprocess.run(
            [sys.executable, "-m", "meshkit", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
            check=False,
        )

    return run
