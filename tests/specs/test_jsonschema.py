"""`meshkit schema`: valid JSON Schema for each spec kind, which the valid specs satisfy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from meshkit.errors import MeshkitError
from meshkit.specs.jsonschema import json_schemas
from meshkit.specs.yamlpos import read_yaml, to_plain

RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture

KINDS = ["Mesh", "Domain", "DataProduct"]

# each spec file of the test mesh, and the kind it holds
SPEC_FILES = [
    ("mesh.yaml", "Mesh"),
    ("domains/sales/domain.yaml", "Domain"),
    ("domains/analytics/domain.yaml", "Domain"),
    ("domains/sales/products/orders/dataproduct.yaml", "DataProduct"),
    ("domains/sales/products/daily_revenue/dataproduct.yaml", "DataProduct"),
    ("domains/analytics/products/revenue_summary/dataproduct.yaml", "DataProduct"),
]


def _plain(file: Path) -> Any:
    """The YAML as JSON-like data (what an editor's schema validation sees)."""
    return to_plain(read_yaml(file))


@pytest.fixture(scope="module")
def cli_schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`meshkit schema` run once through the real CLI."""
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    result = subprocess.run(
        [sys.executable, "-m", "meshkit", "schema"],
        capture_output=True,
        text=True,
        cwd=tmp_path_factory.mktemp("schema"),
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_cli_prints_every_kind(cli_schemas: dict[str, Any]) -> None:
    assert sorted(cli_schemas) == sorted(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_schema_is_valid_json_schema(kind: str, cli_schemas: dict[str, Any]) -> None:
    schema = cli_schemas[kind]
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == kind
    # unknown keys are errors in the specs, so they are in the schema too
    assert schema["additionalProperties"] is False
    assert "apiVersion" in schema["properties"]


@pytest.mark.parametrize("kind", KINDS)
def test_cli_prints_one_kind(kind: str, run_meshkit: RunMeshkit) -> None:
    result = run_meshkit("schema", kind.lower())  # the kind is case-insensitive
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema == json_schemas(kind)[kind]


def test_cli_writes_schema_files(tmp_path: Path, run_meshkit: RunMeshkit) -> None:
    out = tmp_path / "schemas"
    result = run_meshkit("schema", "--output", str(out))
    assert result.returncode == 0, result.stderr
    for kind in KINDS:
        written = json.loads((out / f"{kind}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(written)


@pytest.mark.parametrize(("file", "kind"), SPEC_FILES, ids=[f for f, _ in SPEC_FILES])
def test_valid_specs_satisfy_their_schema(mesh_root: Path, file: str, kind: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schemas(kind)[kind])
    errors = [e.message for e in validator.iter_errors(_plain(mesh_root / file))]
    assert errors == []


def test_schema_rejects_what_the_loader_rejects(mesh_root: Path) -> None:
    """Editors flag the same typos meshkit does (an unknown key, a bad enum value)."""
    file = mesh_root / "domains/sales/products/orders/dataproduct.yaml"
    text = file.read_text().replace("owner:\n", "ownr:\n").replace("status: active", "status: x")
    file.write_text(text)
    validator = jsonschema.Draft202012Validator(json_schemas("DataProduct")["DataProduct"])
    messages = " | ".join(e.message for e in validator.iter_errors(_plain(file)))
    assert "'ownr' was unexpected" in messages
    assert "'owner' is a required property" in messages
    assert "'x' is not one of" in messages


def test_unknown_kind_has_a_hint() -> None:
    with pytest.raises(MeshkitError) as caught:
        json_schemas("Domian")
    assert caught.value.message == "unknown spec kind 'Domian'"
    assert caught.value.hint == "did you mean 'Domain'?"
    with pytest.raises(MeshkitError) as unrelated:
        json_schemas("Table")
    assert unrelated.value.hint == "use one of: Mesh, Domain, DataProduct"


def test_cli_unknown_kind_exits_with_hint(run_meshkit: RunMeshkit) -> None:
    result = run_meshkit("schema", "Dataproduc")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "unknown spec kind 'Dataproduc'" in result.stderr
    assert "did you mean 'DataProduct'?" in result.stderr
    assert result.stdout == ""
