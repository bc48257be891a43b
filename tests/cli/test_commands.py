"""The CLI over the TPC-H example mesh: output, --json, exit codes, and no tracebacks."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from conftest import copy_mesh, run_cli


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(args, capsys)


def test_validate(example_mesh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["validate", "--mesh", str(example_mesh)], capsys)
    assert code == 0
    assert "5 domains, 9 products are valid" in out
    code, out, _ = run(["validate", "--mesh", str(example_mesh), "--json"], capsys)
    assert json.loads(out)["products"] == 9


def test_build_select_and_json(example_mesh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["build", "--mesh", str(example_mesh), "--select", "+analytics.customer_revenue", "--json"],
        capsys,
    )
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    built = [r["product"] for r in report["results"]]
    assert built[-1] == "analytics.customer_revenue"
    assert set(built) == {
        "analytics.customer_revenue",
        "customer.customers",
        "sales.orders",
        "sales.order_lines",
    }
    assert all(r["status"] == "published" for r in report["results"])


def test_products_show_and_query(
    built_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = str(built_example)
    code, out, _ = run(["products", "--mesh", mesh, "--json"], capsys)
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0
    assert rows["sales.orders"]["rows"] == 15000
    assert rows["sales.orders"]["last_run"] == "success"
    code, out, _ = run(["products", "--mesh", mesh, "--search", "supplier"], capsys)
    assert "supply.suppliers" in out
    assert "sales.orders" not in out
    code, out, _ = run(["show", "sales.orders", "--mesh", mesh, "--json"], capsys)
    shown = json.loads(out)
    assert shown["versions"][0]["row_count"] == 15000
    assert shown["last_run"]["status"] == "success"
    assert {q["check_name"] for q in shown["quality"]} >= {"contract:primary_key:order_key"}
    assert shown["lineage"]
    code, out, _ = run(["show", "sales.orders", "--mesh", mesh], capsys)
    assert "schema (the contract)" in out
    assert "customer_key" in out
    code, out, _ = run(
        [
            "query",
            "select order_status, count(*) as n from sales.orders group by 1 order by 1",
            "--mesh",
            mesh,
            "--csv",
        ],
        capsys,
    )
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["order_status"] for r in table] == ["F", "O", "P"]
    assert sum(int(r["n"]) for r in table) == 15000
    code, out, _ = run(
        ["query", "select count(*) as n from customer.customers", "--mesh", mesh, "--json"], capsys
    )
    assert json.loads(out) == [{"n": 1500}]


def test_the_breakable_check_fails_the_build(
    built_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's documented way to see the gate fail: drop P from the accepted order statuses."""
    mesh = copy_mesh(built_example, tmp_path / "mesh")
    spec = mesh / "domains/sales/products/orders/dataproduct.yaml"
    text = spec.read_text()
    assert "values: [F, O, P]" in text
    spec.write_text(text.replace("values: [F, O, P]", "values: [F, O]"))
    table = mesh / "warehouse/sales/orders"
    before = DeltaTable(str(table)).version()
    code, out, _err = run(["build", "sales.orders", "--mesh", str(mesh)], capsys)
    assert code == 4
    assert "FAILED" in out
    assert "value(s) of order_status outside ['F', 'O']" in out
    assert "sample failing rows" in out
    assert DeltaTable(str(table)).version() == before


def test_errors_are_messages_with_exit_codes(
    tmp_path: Path, built_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["validate", "--mesh", str(tmp_path)], capsys)
    assert code == 2
    assert "meshkit init" in err
    code, _, err = run(["show", "sales.ordrs", "--mesh", str(built_example)], capsys)
    assert code == 2
    assert "did you mean 'sales.orders'?" in err
    code, _, err = run(["query", "delete from sales.orders", "--mesh", str(built_example)], capsys)
    assert code == 9  # refused
    assert "only a single SELECT" in err
    code, _, err = run(
        ["query", "select nope from sales.orders", "--mesh", str(built_example)], capsys
    )
    assert code == 1
    assert "nope" in err
    code, _, err = run(["build", "--no-such-flag"], capsys)
    assert code == 2
    assert "No such option" in err
    code, _, err = run(["schema", "Dataproduct2"], capsys)
    assert code == 1
    assert "did you mean 'DataProduct'?" in err


def test_init_then_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new-mesh"
    code, out, _ = run(["init", str(target)], capsys)
    assert code == 0
    assert (target / "mesh.yaml").is_file()
    code, out, _ = run(["build", "--mesh", str(target), "--json"], capsys)
    assert code == 0, out
    assert json.loads(out)["ok"] is True
    code, _, err = run(["init", str(target)], capsys)
    assert code != 0
    assert "mesh.yaml" in err


def test_schema_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, _ = run(["schema", "--output", str(tmp_path / "schemas")], capsys)
    assert code == 0
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert names == ["DataProduct.schema.json", "Domain.schema.json", "Mesh.schema.json"]


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path: Path) -> None:
    """`meshkit demo` as a user runs it: a real process, generating data and building all."""
    meshkit = shutil.which("meshkit", path=str(Path(sys.executable).parent))
    assert meshkit is not None
    done = subprocess.run(
        [meshkit, "demo", "--dir", str(tmp_path / "demo"), "--scale", "0.01"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.count(" published │") == 9
    assert "order_status" in done.stdout
    assert "governance" in done.stdout  # the policies, evaluated on every product
    assert "pii-masking" in done.stdout
    assert "warning [one-owner-per-source, recommended]" in done.stderr
    assert "maria.gonzalez@example.com approved it" in done.stdout  # the access tour
    assert "customer_name, address, phone, account_balance masked" in done.stdout
    assert "audit log:" in done.stdout
    assert "intact" in done.stdout
    assert (tmp_path / "demo" / "warehouse" / "sales" / "order_lines" / "_delta_log").is_dir()


def test_query_and_products_explain_bad_input(
    built_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["query", "selec * from sales.orders", "--mesh", str(built_example)], capsys)
    assert code == 1
    assert 'syntax error at or near "selec" (line 1, column 1)' in err
    code, _, err = run(["products", "--domain", "sale", "--mesh", str(built_example)], capsys)
    assert code == 2
    assert "did you mean 'sales'?" in err
