"""Fixtures shared by every test package: a mesh writer, the TPC-H example mesh, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from meshkit.workspace import Workspace

import yaml_writer

MakeMesh = Callable[..., Path]


def product_spec(name: str, **overrides: Any) -> dict[str, Any]:
    """A complete, valid product spec; tests override what they exercise."""
    spec: dict[str, Any] = {
        "apiVersion": "meshkit/v1",
        "kind": "DataProduct",
        "name": name,
        "version": "1.0.0",
        "status": "active",
        "description": f"The {name} data product.",
        "tags": ["test"],
        "owner": {"technical": "ana@example.com", "business": "raj@example.com"},
        "inputs": [{"name": "raw", "file": "data/orders.parquet"}],
        "transform": {"query": "select * from raw"},
        "schema": {"columns": [{"name": "id", "type": "bigint"}]},
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def make_mesh(tmp_path: Path) -> MakeMesh:
    """Write a mesh: `make_mesh({"sales": {"orders": spec}}, files={"domains/...sql": text})`."""

    def make(
        domains: dict[str, dict[str, dict[str, Any]]],
        *,
        files: dict[str, str] | None = None,
        root: Path | None = None,
    ) -> Path:
        root = root or tmp_path / "mesh"
        root.mkdir(parents=True, exist_ok=True)
        yaml_writer.dump(
            root / "mesh.yaml", {"apiVersion": "meshkit/v1", "kind": "Mesh", "name": "test-mesh"}
        )
        for domain, products in domains.items():
            folder = root / "domains" / domain
            folder.mkdir(parents=True, exist_ok=True)
            yaml_writer.dump(
                folder / "domain.yaml",
                {
                    "apiVersion": "meshkit/v1",
                    "kind": "Domain",
                    "name": domain,
                    "description": f"The {domain} domain.",
                    "type": "source-aligned",
                    "owner": f"{domain}-team",
                },
            )
            for name, spec in products.items():
                product_dir = folder / "products" / name
                product_dir.mkdir(parents=True, exist_ok=True)
                yaml_writer.dump(product_dir / "dataproduct.yaml", spec)
        for relative, text in (files or {}).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root

    return make


# ------------------------------------------------------------------ TPC-H example mesh


@pytest.fixture(scope="session")
def tpch_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TPC-H at scale factor 0.01, generated once per test process."""
    from meshkit.demo.tpch import generate

    dest = tmp_path_factory.mktemp("tpch") / "data"
    generate(dest, scale=0.01)
    return dest


@pytest.fixture
def example_mesh(tmp_path: Path, tpch_data: Path) -> Path:
    """A fresh copy of the example mesh, wired to the shared scale-0.01 data."""
    from meshkit.demo import copy_tree, example_mesh_path

    root = tmp_path / "example"
    copy_tree(example_mesh_path(), root)
    (root / "data").symlink_to(tpch_data, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def built_example(tmp_path_factory: pytest.TempPathFactory, tpch_data: Path) -> Path:
    """The example mesh built once per test process (read-only: copy it before changing it)."""
    from meshkit.demo import copy_tree, example_mesh_path

    root = tmp_path_factory.mktemp("built") / "example"
    copy_tree(example_mesh_path(), root)
    (root / "data").symlink_to(tpch_data, target_is_directory=True)
    with Workspace(root) as ws:
        results = ws.build()
    failed = [r for r in results if not r.ok]
    assert not failed, [str(r.error) for r in failed]
    return root


@pytest.fixture
def workspace_of() -> Iterator[Callable[[Path], Workspace]]:
    opened: list[Workspace] = []

    def open_(root: Path) -> Workspace:
        ws = Workspace(root)
        opened.append(ws)
        return ws

    yield open_
    for ws in opened:
        ws.close()


# ------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("MESHKIT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("set MESHKIT_TEST_POSTGRES_URL to run PostgreSQL tests")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as err:
        pytest.skip(f"PostgreSQL at {url} is unreachable: {str(err).splitlines()[0]}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_table_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `meshkit ARGS` in-process, as the console script does; no traceback may escape."""
    import sys

    from meshkit.cli.app import main

    old = sys.argv
    sys.argv = ["meshkit", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def copy_mesh(src: Path, dest: Path) -> Path:
    """Copy a built mesh (specs, warehouse and catalog) so a test may change it."""
    shutil.copytree(src, dest, symlinks=True)
    return dest
