"""`meshkit validate` reports everything that can be checked independently in one run, says
what it could not check and why, and locates SQL errors as well as the engine would: file,
line and column in the SQL (or the YAML line for inline SQL), the line with a caret, and a
column of the inputs for a misspelt one."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshkit.errors import SpecError
from meshkit.workspace import Workspace

RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture
ORDERS = "domains/sales/products/orders"
DAILY = "domains/sales/products/daily_revenue"


def edit(root: Path, relative: str, old: str, new: str) -> Path:
    file = root / relative
    text = file.read_text()
    assert old in text, f"{old!r} not in {relative}"
    file.write_text(text.replace(old, new, 1))
    return file


def problems(root: Path) -> SpecError:
    with Workspace(root) as ws, pytest.raises(SpecError) as info:
        ws.validate()
    return info.value


def test_a_misspelt_column_is_located_in_the_sql_file_with_a_caret(mesh_root: Path) -> None:
    sql = edit(mesh_root, f"{ORDERS}/transform.sql", "    customer_id,", "    custmer_id,")
    (problem,) = problems(mesh_root).problems
    assert problem.file == sql.resolve()
    line = sql.read_text().splitlines().index("    custmer_id,") + 1
    assert (problem.line, problem.column) == (line, 5)
    assert problem.message == (
        'SQL does not bind: Referenced column "custmer_id" not found in FROM clause'
    )
    assert problem.hint == "did you mean 'customer_id' (a column of raw_orders)?"
    assert problem.excerpt is not None
    source, caret = problem.excerpt.splitlines()
    assert source.endswith("|     custmer_id,")
    assert caret.endswith("|     ^^^^^^^^^^")
    assert caret.index("^") == source.index("custmer_id")


def test_a_qualified_misspelt_column_points_at_the_column(mesh_root: Path) -> None:
    edit(mesh_root, f"{ORDERS}/transform.sql", "    amount,", "    r.amont,")
    edit(mesh_root, f"{ORDERS}/transform.sql", "FROM raw_orders", "FROM raw_orders AS r")
    (problem,) = problems(mesh_root).problems
    assert "amont" in problem.message
    assert problem.column == len("    r.") + 1
    assert problem.hint == "did you mean 'amount' (a column of raw_orders)?"


def test_an_unknown_function_is_located(mesh_root: Path) -> None:
    edit(mesh_root, f"{ORDERS}/transform.sql", "    status,", "    uper(status) AS status,")
    (problem,) = problems(mesh_root).problems
    assert "uper" in problem.message
    assert problem.column == 5
    assert problem.excerpt is not None
    assert "^^^^" in problem.excerpt


def test_inline_sql_is_located_on_its_yaml_line(mesh_root: Path) -> None:
    spec = edit(mesh_root, f"{DAILY}/dataproduct.yaml", "  sql: transform.sql\n", "")
    edit(
        mesh_root,
        f"{DAILY}/dataproduct.yaml",
        "transform:\n",
        "transform:\n  query: |\n    SELECT CAST(ordered_at AS DATE) AS day,\n"
        "           SUM(amout) AS revenue\n    FROM orders GROUP BY 1\n",
    )
    (problem,) = problems(mesh_root).problems
    lines = spec.read_text().splitlines()
    assert problem.file == spec.resolve()
    assert problem.line is not None
    assert problem.column is not None
    assert lines[problem.line - 1][problem.column - 1 :].startswith("amout")
    assert problem.hint == "did you mean 'amount' (a column of orders)?"
    assert problem.path == "transform.query"


def test_a_custom_sql_check_is_bound_and_named(mesh_root: Path) -> None:
    spec = edit(
        mesh_root,
        f"{ORDERS}/dataproduct.yaml",
        "quality:\n",
        "quality:\n  - type: sql\n    name: positive_amounts\n"
        "    query: select * from this where amnt < 0\n",
    )
    (problem,) = problems(mesh_root).problems
    assert problem.message.startswith("quality check 'positive_amounts' does not bind")
    assert "amnt" in problem.message
    assert problem.file == spec.resolve()
    assert problem.path == "quality[0].query"
    assert problem.hint == "did you mean 'amount' (a column of this)?"


def test_five_mistakes_in_one_run(mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    """A schema problem, two bad references, a SQL typo and a contract mismatch, in three
    products: one `meshkit validate` finds them all and says what it could not check."""
    # 1. an unknown key (the spec is invalid, but its references and SQL are still checked)
    edit(mesh_root, f"{ORDERS}/dataproduct.yaml", "tags:", "tgas:")
    # 2. a quality check naming a column that is not in the schema (same product)
    edit(mesh_root, f"{ORDERS}/dataproduct.yaml", "column: customer_id", "column: customerid")
    # 3. a SQL typo (same product)
    edit(mesh_root, f"{ORDERS}/transform.sql", "    status,", "    stauts,")
    # 4. a contract mismatch in another product, whose upstream is sound
    edit(
        mesh_root,
        "domains/analytics/products/revenue_summary/dataproduct.yaml",
        "    - name: days\n      type: BIGINT",
        "    - name: days\n      type: INTEGER",
    )
    # 5. an unknown product in a third
    edit(mesh_root, f"{DAILY}/dataproduct.yaml", "product: sales.orders", "product: sales.ordrs")
    result = run_meshkit("validate", "--mesh", str(mesh_root), "--json")
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    messages = [p["message"] for p in report["problems"]]
    assert any("unknown key 'tgas'" in m for m in messages), messages
    assert any("column 'customerid' is not in the schema" in m for m in messages), messages
    assert any('"stauts" not found' in m for m in messages), messages
    assert any("column 'days' is BIGINT but the contract says INTEGER" in m for m in messages)
    assert any("unknown product 'sales.ordrs'" in m for m in messages), messages
    assert len(messages) == 5, messages
    skipped = " | ".join(report["skipped"])
    assert "sales.orders: the contract" in skipped  # its SQL does not bind
    assert "sales.daily_revenue: SQL not bound" in skipped  # its input is wrong
    assert "policies of" in skipped
    assert "sales.orders" in skipped
    # and the same as text, once, without a traceback
    text = run_meshkit("validate", "--mesh", str(mesh_root))
    assert text.returncode == 2
    assert "5 problems in the mesh specs" in text.stderr
    assert text.stderr.count("not checked:") == len(report["skipped"])
    assert "Traceback" not in text.stderr


def test_policies_of_sound_products_are_evaluated_beside_spec_problems(
    mesh_root: Path,
) -> None:
    """A required policy failing on one product is reported in the same run as a spec problem
    in another, unrelated one."""
    edit(
        mesh_root,
        "mesh.yaml",
        "settings:\n",
        "governance:\n  policies:\n    - name: owners\n      rule: ownership\n"
        "      enforcement: required\n      params: {require: [technical, business, steward]}\n"
        "settings:\n",
    )
    edit(mesh_root, f"{DAILY}/dataproduct.yaml", "version: 0.2.0", "version: two")
    error = problems(mesh_root)
    messages = [p.message for p in error.problems]
    assert any("[owners]" in m for m in messages), messages
    assert any("version" in p.path for p in error.problems), messages


def test_a_missing_input_file_is_a_warning_naming_the_path(
    mesh_root: Path, run_meshkit: RunMeshkit
) -> None:
    (mesh_root / "data" / "orders.parquet").unlink()
    result = run_meshkit("validate", "--mesh", str(mesh_root))
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr
    assert "data/orders.parquet" in result.stderr
    assert "inputs[0].file" in result.stderr
    assert "meshkit demo" not in result.stderr
    report = json.loads(run_meshkit("validate", "--mesh", str(mesh_root), "--json").stdout)
    (warning,) = report["warnings"]
    assert warning["path"] == "inputs[0].file"
    assert warning["line"] is not None
