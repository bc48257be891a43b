"""The happy path of the loader: the test mesh loads, with ids, hashes and root discovery."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshkit.errors import SpecError
from meshkit.specs import Mesh, find_root, load_mesh
from meshkit.workspace import Workspace

RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture

ORDERS = "domains/sales/products/orders"


def test_fixture_mesh_loads(mesh_root: Path) -> None:
    mesh = load_mesh(mesh_root)
    assert isinstance(mesh, Mesh)
    assert mesh.root == mesh_root.resolve()
    assert mesh.spec.name == "test-mesh"
    assert sorted(mesh.domains) == ["analytics", "sales"]
    assert sorted(mesh.products) == [
        "analytics.revenue_summary",
        "sales.daily_revenue",
        "sales.orders",
    ]


def test_product_ids_are_domain_dot_name(mesh_root: Path) -> None:
    mesh = load_mesh(mesh_root)
    for product_id, product in mesh.products.items():
        assert product_id == f"{product.domain}.{product.spec.name}"
        assert product.id == product_id
        assert (
            product.file
            == mesh.root
            / "domains"
            / product.domain
            / "products"
            / (product.spec.name)
            / "dataproduct.yaml"
        )
    orders = mesh.products["sales.orders"]
    assert orders.domain == "sales"
    assert orders.spec.domain == "sales"  # optional in the spec; set here
    assert mesh.products["sales.daily_revenue"].spec.domain is None
    assert mesh.products["sales.daily_revenue"].upstream() == ["sales.orders"]
    assert mesh.products["analytics.revenue_summary"].upstream() == ["sales.daily_revenue"]


def test_transform_is_read(mesh_root: Path) -> None:
    orders = load_mesh(mesh_root).products["sales.orders"]
    assert orders.transform_file == mesh_root.resolve() / ORDERS / "transform.sql"
    assert orders.transform_text is not None
    assert "FROM raw_orders" in orders.transform_text


def test_fixture_mesh_validates(mesh_root: Path) -> None:
    """The SQL/schema check binds every transform against the declared schemas."""
    report = Workspace(mesh_root).validate()
    assert (report.domains, report.products) == (2, 3)
    assert report.notes == []


def _hash(root: Path, product_id: str = "sales.orders") -> str:
    return load_mesh(root).products[product_id].spec_hash


def test_spec_hash_changes_with_the_sql(mesh_root: Path) -> None:
    before = _hash(mesh_root)
    sql = mesh_root / ORDERS / "transform.sql"
    sql.write_text(sql.read_text().replace("FROM raw_orders", "FROM raw_orders WHERE amount > 0"))
    assert _hash(mesh_root) != before


def test_spec_hash_changes_with_the_spec(mesh_root: Path) -> None:
    before = _hash(mesh_root)
    spec = mesh_root / ORDERS / "dataproduct.yaml"
    spec.write_text(spec.read_text().replace("max: 1000", "max: 2000"))
    assert _hash(mesh_root) != before


def test_spec_hash_ignores_yaml_comments(mesh_root: Path) -> None:
    before = _hash(mesh_root)
    others = _hash(mesh_root, "sales.daily_revenue")
    spec = mesh_root / ORDERS / "dataproduct.yaml"
    text = spec.read_text()
    text = "# the orders product\n" + text
    text = text.replace("status: active\n", "status: active  # since 2024\n")
    text = text.replace("quality:\n", "# checked on every build\nquality:\n")
    spec.write_text(text)
    assert _hash(mesh_root) == before
    assert _hash(mesh_root, "sales.daily_revenue") == others


def test_find_root_walks_up(mesh_root: Path) -> None:
    nested = mesh_root / ORDERS
    assert find_root(nested) == mesh_root.resolve()
    assert find_root(mesh_root) == mesh_root.resolve()
    deeper = nested / "notes" / "drafts"
    deeper.mkdir(parents=True)
    assert find_root(deeper) == mesh_root.resolve()


def test_find_root_without_mesh_hints_init(tmp_path: Path) -> None:
    lonely = tmp_path / "not-a-mesh" / "sub"
    lonely.mkdir(parents=True)
    with pytest.raises(SpecError) as caught:
        find_root(lonely)
    [problem] = caught.value.problems
    assert "no mesh.yaml found" in problem.message
    assert problem.file == lonely.resolve()
    assert problem.hint is not None
    assert "meshkit init" in problem.hint


def test_load_mesh_without_mesh_yaml_hints_init(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_mesh(tmp_path)
    [problem] = caught.value.problems
    assert problem.message == "no mesh.yaml in this folder"
    assert problem.file == tmp_path.resolve()
    assert problem.hint is not None
    assert "meshkit init" in problem.hint


def test_cli_without_mesh_yaml_hints_init(tmp_path: Path, run_meshkit: RunMeshkit) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_meshkit("validate", "--mesh", str(empty))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{empty.resolve()}: no mesh.yaml found" in result.stderr
    assert "hint: run `meshkit init`" in result.stderr


def test_cli_validates_the_fixture_mesh(mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    result = run_meshkit("validate", "--mesh", str(mesh_root))
    assert result.returncode == 0, result.stderr
    assert "2 domains, 3 products are valid" in result.stdout
