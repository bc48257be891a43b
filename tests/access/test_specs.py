"""Access keys in specs: row filters and SQL masks are checked at validate time, located."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshkit.errors import SpecError
from meshkit.specs import load_mesh

from conftest import MakeMesh, product_spec

COLUMNS = [
    {"name": "id", "type": "bigint"},
    {"name": "region", "type": "varchar"},
    {"name": "email", "type": "varchar", "pii": True, "masking": {"rule": "hash"}},
]


def _load(make_mesh: MakeMesh, **overrides: Any) -> list[str]:
    spec = product_spec("orders", **{"schema": {"columns": COLUMNS}, **overrides})
    root = make_mesh({"sales": {"orders": spec}})
    mesh = yaml.safe_load((root / "mesh.yaml").read_text())
    mesh["access"] = {"principals": [{"name": "ana@example.com", "attributes": {"region": "EU"}}]}
    (root / "mesh.yaml").write_text(yaml.safe_dump(mesh))
    try:
        load_mesh(root)
    except SpecError as err:
        return [f"{p.path}|{p.line}|{p.message}|{p.hint}" for p in err.problems]
    return []


def test_a_valid_row_filter_and_mask_load(make_mesh: MakeMesh) -> None:
    columns = [
        *COLUMNS[:2],
        {**COLUMNS[2], "masking": {"rule": "sql", "expression": "left(email, 2) || '***'"}},
    ]
    assert (
        _load(
            make_mesh, access={"row_filter": "region = caller.region"}, schema={"columns": columns}
        )
        == []
    )


@pytest.mark.parametrize(
    ("access", "expected"),
    [
        ({"row_filter": "region = = caller.region"}, "does not parse"),
        ({"row_filter": "country = caller.region"}, "not a column of the product"),
        ({"row_filter": "region = caller.country"}, "caller.country, which no principal has"),
        ({"row_filter": "id in (select 1)"}, "subquery"),
        ({"row_filter": "getenv('X') = region"}, "getenv()"),
        ({"row_filter": "other.region = caller.region"}, "not a column of the product"),
        ({"auto_approve": {"domains": ["salse"]}}, "unknown domain 'salse'"),
        ({"row_filter": 5}, "row_filter"),
        ({"auto_approve": {"max_classification": "secret"}}, "max_classification"),
        ({"rowfilter": "x"}, "rowfilter"),
    ],
)
def test_bad_access_keys_are_located_problems(
    make_mesh: MakeMesh, access: dict[str, Any], expected: str
) -> None:
    problems = _load(make_mesh, access=access)
    assert any(expected in p and p.startswith("access") for p in problems), problems
    assert all("|None|" not in p for p in problems)  # every problem has a line


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("left(region, 2)", "a mask may read only its own column"),
        ("(select max(email) from t)", "subquery"),
        ("read_text('/etc/passwd')", "read_text()"),
        ("left(email,", "does not parse"),
    ],
)
def test_bad_sql_masks_are_located_problems(
    make_mesh: MakeMesh, expression: str, expected: str
) -> None:
    columns = [*COLUMNS[:2], {**COLUMNS[2], "masking": {"rule": "sql", "expression": expression}}]
    problems = _load(make_mesh, schema={"columns": columns})
    assert any(expected in p and "masking.expression" in p for p in problems), problems


def test_bad_mesh_access_keys(make_mesh: MakeMesh, tmp_path: Path) -> None:
    root = make_mesh({"sales": {"orders": product_spec("orders")}})
    mesh = yaml.safe_load((root / "mesh.yaml").read_text())
    mesh["access"] = {
        "principals": [{"name": "b", "clearance": "top"}],
        "webhooks": [{"url": "ftp://x", "secret_env": "S"}],
        "max_rows": 0,
    }
    (root / "mesh.yaml").write_text(yaml.safe_dump(mesh))
    with pytest.raises(SpecError) as caught:
        load_mesh(root)
    paths = {p.path for p in caught.value.problems}
    assert {"access.principals[0].clearance", "access.webhooks[0].url", "access.max_rows"} <= paths
    mesh["access"] = {"principals": [{"name": "a"}, {"name": "a"}]}
    (root / "mesh.yaml").write_text(yaml.safe_dump(mesh))
    with pytest.raises(SpecError) as again:
        load_mesh(root)
    assert any("declared twice" in p.message for p in again.value.problems)
