"""A build whose spec, code and inputs are unchanged since the newest version publishes
nothing and says "up to date"; `--force` rebuilds; any change rebuilds the product it
touches and what is downstream of it, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshkit.tables.delta import latest_version
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec

COLUMNS = [{"name": "id", "type": "bigint"}, {"name": "amount", "type": "double"}]


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    return subprocess.run(
        [sys.executable, "-m", "meshkit", *args, "--mesh", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def statuses(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return {r["product"]: r["status"] for r in json.loads(result.stdout)["results"]}


def three_products(make_mesh: MakeMesh) -> Path:
    """shop.orders (a CSV) -> shop.totals -> shop.report; shop.other reads another CSV."""
    return make_mesh(
        {
            "shop": {
                "orders": product_spec(
                    "orders",
                    inputs=[{"name": "raw", "file": "data/orders*.csv"}],
                    transform={"sql": "transform.sql"},
                    schema={"columns": COLUMNS},
                ),
                "totals": product_spec(
                    "totals",
                    inputs=[{"name": "orders", "product": "shop.orders"}],
                    transform={"query": "select count(*) as n, sum(amount) as total from orders"},
                    schema={
                        "columns": [
                            {"name": "n", "type": "bigint"},
                            {"name": "total", "type": "double"},
                        ]
                    },
                ),
                "report": product_spec(
                    "report",
                    inputs=[{"name": "totals", "product": "shop.totals"}],
                    transform={"query": "select n from totals"},
                    schema={"columns": [{"name": "n", "type": "bigint"}]},
                ),
                "other": product_spec(
                    "other",
                    inputs=[{"name": "raw", "file": "data/other.csv"}],
                    transform={"query": "select id, amount from raw"},
                    schema={"columns": COLUMNS},
                ),
            }
        },
        files={
            "domains/shop/products/orders/transform.sql": "select id, amount from raw\n",
            "data/orders-1.csv": "id,amount\n1,2.5\n2,4.0\n",
            "data/other.csv": "id,amount\n7,1.0\n",
        },
    )


def versions(root: Path) -> dict[str, int | None]:
    return {
        name: latest_version(root / "warehouse" / "shop" / name)
        for name in ("orders", "totals", "report", "other")
    }


def test_a_second_build_is_up_to_date_and_force_rebuilds(make_mesh: MakeMesh) -> None:
    root = three_products(make_mesh)
    assert set(statuses(cli(root, "build", "--json")).values()) == {"published"}
    before = versions(root)
    with Workspace(root) as ws:
        catalog_before = {p: len(ws.catalog.versions.of(p)) for p in ws.mesh.products}

    again = cli(root, "build", "--json")
    assert set(statuses(again).values()) == {"up_to_date"}
    for result in json.loads(again.stdout)["results"]:
        assert result["delta_version"] == 0
        assert result["reasons"] == ["spec, code and inputs unchanged since version 0"]
    assert versions(root) == before
    with Workspace(root) as ws:
        assert {p: len(ws.catalog.versions.of(p)) for p in ws.mesh.products} == catalog_before

    text = cli(root, "build")
    assert text.returncode == 0, text.stderr
    assert text.stdout.count("up to date") == 4

    forced = cli(root, "build", "shop.orders", "--force", "--json")
    assert statuses(forced) == {"shop.orders": "published"}
    assert versions(root)["orders"] == 1


@pytest.mark.parametrize(
    ("change", "rebuilt"),
    [
        ("spec", {"orders", "totals", "report"}),
        ("sql", {"orders", "totals", "report"}),
        ("file_rewritten", {"orders", "totals", "report"}),
        ("file_added_to_glob", {"orders", "totals", "report"}),
        ("downstream_spec", {"totals", "report"}),
        ("other_file", {"other"}),
    ],
)
def test_a_change_rebuilds_what_it_touches_and_downstream(
    make_mesh: MakeMesh, change: str, rebuilt: set[str]
) -> None:
    root = three_products(make_mesh)
    with Workspace(root) as ws:
        assert all(r.status == "published" for r in ws.build())
    orders = root / "domains/shop/products/orders"
    if change == "spec":
        spec = orders / "dataproduct.yaml"
        spec.write_text(spec.read_text().replace("The orders data product.", "Orders, v2."))
    elif change == "sql":
        (orders / "transform.sql").write_text("select id, amount * 2 as amount from raw\n")
    elif change == "file_rewritten":
        time.sleep(0.01)  # a new modification time even on coarse clocks
        (root / "data/orders-1.csv").write_text("id,amount\n1,2.5\n2,4.5\n")
    elif change == "file_added_to_glob":
        (root / "data/orders-2.csv").write_text("id,amount\n3,1.0\n")
    elif change == "downstream_spec":
        spec = root / "domains/shop/products/totals/dataproduct.yaml"
        spec.write_text(spec.read_text().replace("The totals data product.", "Totals, v2."))
    else:
        time.sleep(0.01)
        (root / "data/other.csv").write_text("id,amount\n7,1.5\n")
    with Workspace(root) as ws:
        results = {r.product_id.split(".")[1]: r for r in ws.build()}
    assert {name for name, r in results.items() if r.status == "published"} == rebuilt
    assert {name for name, r in results.items() if r.status == "up_to_date"} == (
        set(results) - rebuilt
    )
    for name in rebuilt:
        assert results[name].delta_version == 1
        assert results[name].reasons, name
    if change == "file_added_to_glob":
        assert results["orders"].reasons == ["input 'raw' changed (1 -> 2 files)"]
        assert results["totals"].reasons == [
            "input 'orders' changed (shop.orders@0 -> shop.orders@1)"
        ]


def test_a_vacuum_of_an_upstream_makes_no_consumer_stale(make_mesh: MakeMesh) -> None:
    """delta-rs commits versions for a vacuum; they change no rows."""
    root = three_products(make_mesh)
    with Workspace(root) as ws:
        ws.build()
        ws.vacuum(["shop.orders"])
        results = {r.product_id: r.status for r in ws.build()}
    assert set(results.values()) == {"up_to_date"}, results


def test_the_example_mesh_built_twice_publishes_nothing_new(
    built_example: Path, tmp_path: Path
) -> None:
    """What `meshkit demo` does on its second run."""
    import shutil

    root = tmp_path / "example"
    shutil.copytree(built_example, root, symlinks=True)
    with Workspace(root) as ws:
        before = {pid: ws.snapshot(pid).version for pid in ws.mesh.products}  # type: ignore[union-attr]
        results = ws.build()
        assert {r.status for r in results} == {"up_to_date"}, [
            (r.product_id, r.status, r.reasons) for r in results
        ]
        assert {pid: ws.snapshot(pid).version for pid in ws.mesh.products} == before  # type: ignore[union-attr]
