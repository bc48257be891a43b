"""What a new user meets in the first hour: `init`, help, versions, and the messages of the
commands they try first, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meshkit.demo import mesh_name_for

from conftest import copy_mesh, run_cli


def test_init_names_the_mesh_after_its_folder_and_scaffolds_governance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "Sales Data"
    code, out, err = run_cli(["init", str(folder)], capsys)
    assert code == 0, err
    assert "created the mesh 'sales-data'" in out
    spec = yaml.safe_load((folder / "mesh.yaml").read_text())
    assert spec["name"] == "sales-data"
    rules = {p["rule"]: p.get("enforcement", "required") for p in spec["governance"]["policies"]}
    assert rules == {
        "pii-masking": "required",
        "ownership": "required",
        "quality-slo": "recommended",
    }
    assert spec["access"]["admins"]
    # the scaffold is valid and complies, and the governance is visible from the start
    code, out, err = run_cli(["validate", "--mesh", str(folder)], capsys)
    assert code == 0, err
    code, out, err = run_cli(["policy", "check", "--mesh", str(folder)], capsys)
    assert code == 0, err
    assert "3 policy results: 0 blocking" in out
    # and the PII policy bites as soon as a mask is removed
    product = folder / "domains/shop/products/orders/dataproduct.yaml"
    product.write_text(product.read_text().replace("      masking: {rule: hash}", ""))
    code, out, err = run_cli(["validate", "--mesh", str(folder)], capsys)
    assert code == 7
    assert "[pii-masking] column 'email' is PII but has no masking rule" in err


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("acme", "acme"),
        ("My Mesh!", "my-mesh"),
        ("2026 data", "mesh-2026-data"),
        ("___", "my-mesh"),
    ],
)
def test_mesh_names_from_folders(tmp_path: Path, folder: str, name: str) -> None:
    assert mesh_name_for(tmp_path / folder) == name


def test_a_mesh_without_policies_gets_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bare"
    run_cli(["init", str(folder)], capsys)
    spec = yaml.safe_load((folder / "mesh.yaml").read_text())
    del spec["governance"]
    (folder / "mesh.yaml").write_text(yaml.safe_dump(spec))
    code, out, err = run_cli(["policy", "check", "--mesh", str(folder)], capsys)
    assert code == 0
    assert "0 policy results" in out
    assert "governance.policies in mesh.yaml" in err


def test_version_and_flags_shown_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    from meshkit import __version__

    code, out, _ = run_cli(["--version"], capsys)
    assert (code, out.strip()) == (0, f"meshkit {__version__}")
    for command in (["validate"], ["build"], ["query"], ["access", "request"], ["--help"]):
        code, out, _ = run_cli([*command, "--help"] if command != ["--help"] else command, capsys)
        assert code == 0
        assert "<bool>" not in out, command
        assert "--help" in out


def test_odd_inputs_get_plain_messages(
    built_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["products", "--mesh", str(tmp_path / "nonexistent")], capsys)
    assert code == 2
    assert "does not exist" in err
    mesh = str(copy_mesh(built_example, tmp_path / "mesh"))
    code, _, err = run_cli(
        ["token", "create", "lena.schmidt@example.com", "--expires", "400d", "--mesh", mesh],
        capsys,
    )
    assert code == 1
    assert "asked for 400d" in err
    assert "0:00:00" not in err
    code, out, err = run_cli(["products", "--search", "zzzz", "--mesh", mesh], capsys)
    assert code == 0
    assert "no data products matching 'zzzz'" in err
    assert out == ""


def test_local_hints_name_commands_not_routes(
    built_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = str(copy_mesh(built_example, tmp_path / "mesh"))
    code, _, err = run_cli(["query", "select * from sales.nope", "--mesh", mesh], capsys)
    assert code == 9
    assert "meshkit products" in err
    assert "GET /" not in err
    code, _, err = run_cli(["query", "select nope from sales.orders", "--mesh", mesh], capsys)
    assert code == 1
    assert "meshkit show" in err
    assert "GET /" not in err


def test_show_prints_masks_and_classification_after_lineage(
    built_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = str(copy_mesh(built_example, tmp_path / "mesh"))
    code, out, err = run_cli(["show", "customer.customers", "--json", "--mesh", mesh], capsys)
    assert code == 0, err
    columns = {c["name"]: c for c in json.loads(out)["columns"]}
    assert columns["customer_name"]["classification"] == "confidential"  # PII: not 'internal'
    assert columns["customer_name"]["masking"] == "hash"
    assert columns["phone"]["masking"] == "partial (last 4 kept)"
    assert columns["nation"] == {
        "name": "nation",
        "type": "VARCHAR",
        "classification": "internal",
        "pii": False,
        "inherited_from": [],
        "masking": None,
    }
    code, out, _ = run_cli(
        ["show", "marketing.campaign_audience", "--json", "--mesh", mesh], capsys
    )
    inherited = {c["name"]: c for c in json.loads(out)["columns"]}["customer_name"]
    assert inherited["pii"] is True
    assert inherited["inherited_from"] == ["customer.customers.customer_name"]
    code, out, _ = run_cli(["show", "customer.customers", "--mesh", mesh], capsys)
    assert "masking" in out
    assert "partial (last 4 kept)" in out
