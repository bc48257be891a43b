"""Helpers for the governance acceptance tests: meshes with policies, located lines, a frozen clock.

`gov_mesh.write(...)` writes a mesh with `make_mesh` (tests/conftest.py), then rewrites mesh.yaml
with `settings:` and a `governance:` block and each domain.yaml with its `policies:`, and writes
the small Parquet files the products read. `line_of` finds the exact line a YAML key is on, so
tests can assert the line a violation names without hard-coding the layout of the file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from meshkit.governance.findings import Finding
from meshkit.workspace import Workspace

import yaml_writer
from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
GOVERNANCE_GROUP = ["governance-board@example.com", "data-protection@example.com"]

# Every file a test product may read: written once per mesh with DuckDB.
DATA_SQL = {
    "data/orders.parquet": """
        select i::bigint as id, (i % 7)::bigint as customer_key, (i * 1.5)::double as amount,
               current_date - (i * 7)::int as order_date  -- recent: within any retention
        from range(40) t(i)
    """,
    "data/ledger.parquet": """
        select i::bigint as id, 'acct-' || i as account, (i * 2.25)::double as amount
        from range(12) t(i)
    """,
    "data/customers.parquet": """
        select i::bigint as customer_key, 'Customer ' || i as customer_name,
               '+4420' || lpad(i::varchar, 8, '0') as phone,
               ['EU', 'US', 'APAC'][1 + i % 3] as region
        from range(25) t(i)
    """,
}


def line_of(file: Path, pattern: str, *, after: str | None = None) -> int:
    """1-based number of the first line of `file` matching regex `pattern` (searched from the
    first line matching `after`, if given). Fails the test if there is none."""
    lines = file.read_text(encoding="utf-8").splitlines()
    start = 0
    if after is not None:
        start = next((i for i, text in enumerate(lines) if re.search(after, text)), -1)
        assert start >= 0, f"no line matches {after!r} in {file}"
    for number, text in enumerate(lines[start:], start=start + 1):
        if re.search(pattern, text):
            return number
    raise AssertionError(
        f"no line matches {pattern!r} in {file}" + (f" after {after!r}" if after else "")
    )


def read_yaml(file: Path) -> Any:
    return yaml.safe_load(file.read_text(encoding="utf-8"))


def finding_of(findings: list[Finding], product: str, policy: str) -> Finding:
    matches = [f for f in findings if f.product == product and f.policy == policy]
    assert len(matches) == 1, f"expected one finding of {policy} on {product}, got {matches}"
    return matches[0]


@dataclass
class GovMesh:
    """A test mesh with governance. `write` may be called again to change it in place."""

    root: Path
    make_mesh: Callable[..., Path]
    opened: list[Workspace] = field(default_factory=list)

    @property
    def mesh_file(self) -> Path:
        return self.root / "mesh.yaml"

    def write(
        self,
        domains: dict[str, dict[str, dict[str, Any]]],
        *,
        policies: list[dict[str, Any]] | None = None,
        domain_policies: dict[str, list[dict[str, Any]]] | None = None,
        settings: dict[str, Any] | None = None,
        group: list[str] | None = None,
        files: dict[str, str] | None = None,
    ) -> Path:
        self.make_mesh(domains, files=files, root=self.root)
        mesh: dict[str, Any] = {"apiVersion": "meshkit/v1", "kind": "Mesh", "name": "gov-mesh"}
        if settings:  # none, or an empty mapping: no settings key at all
            mesh["settings"] = settings
        mesh["governance"] = {
            "group": GOVERNANCE_GROUP if group is None else group,
            "policies": policies or [],
        }
        yaml_writer.dump(self.mesh_file, mesh)
        for domain, declared in (domain_policies or {}).items():
            self.set_domain_policies(domain, declared)
        self.write_data()
        return self.root

    def write_data(self) -> None:
        con = duckdb.connect()
        try:
            for relative, sql in DATA_SQL.items():
                path = self.root / relative
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    con.execute(f"copy ({sql}) to '{path}' (format parquet)")
        finally:
            con.close()

    def domain_file(self, domain: str) -> Path:
        return self.root / "domains" / domain / "domain.yaml"

    def set_domain_policies(self, domain: str, policies: list[dict[str, Any]]) -> None:
        file = self.domain_file(domain)
        spec = read_yaml(file)
        spec["policies"] = policies
        yaml_writer.dump(file, spec)

    def product_file(self, product_id: str) -> Path:
        domain, name = product_id.split(".")
        return self.root / "domains" / domain / "products" / name / "dataproduct.yaml"

    def update_product(self, product_id: str, **changes: Any) -> Path:
        """Change top-level keys of a product's spec (a value of None removes the key)."""
        file = self.product_file(product_id)
        spec = read_yaml(file)
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value
        yaml_writer.dump(file, spec)
        return file

    line_of = staticmethod(line_of)
    finding_of = staticmethod(finding_of)

    def workspace(self) -> Workspace:
        """A fresh Workspace (specs are re-read); closed when the test ends."""
        ws = Workspace(self.root)
        self.opened.append(ws)
        return ws

    def close(self) -> None:
        for ws in self.opened:
            ws.close()
        self.opened.clear()


@pytest.fixture
def gov_mesh(tmp_path: Path, make_mesh: Callable[..., Path]) -> Iterator[GovMesh]:
    helper = GovMesh(tmp_path / "mesh", make_mesh)
    yield helper
    helper.close()


@pytest.fixture
def freeze_now(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """`freeze_now(moment)`: every Workspace's clock (waivers, retention) reads `moment`."""

    def freeze(moment: datetime) -> None:
        monkeypatch.setattr(Workspace, "now", lambda self: moment)

    return freeze


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`cli("policy", "check", "--mesh", root)` -> (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        return run_cli([str(a) for a in args], capsys)

    return run


# A rule-plugin distribution, as tests/governance/test_custom_rules.py installs it.
PLUGIN_ENTRY_POINTS = """\
[meshkit.rules]
require-steward = meshkit_example_rules.rules:RequireSteward
no-ssn = meshkit_example_rules.rules:no_ssn
"""


@pytest.fixture
def rule_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install meshkit-example-rules: a dist-info on sys.path, its code in fixtures/."""
    site = tmp_path / "site-packages"
    dist_info = site / "meshkit_example_rules-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meshkit-example-rules\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(PLUGIN_ENTRY_POINTS, encoding="utf-8")
    (dist_info / "top_level.txt").write_text("meshkit_example_rules\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in [m for m in sys.modules if m.split(".")[0] == "meshkit_example_rules"]:
        del sys.modules[module]
