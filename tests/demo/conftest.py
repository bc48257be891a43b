"""Fixtures for the demo tests: TPC-H data at scale 0.01 (generated once per session), and a
copy of the example mesh with that data in its data/ folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.demo import copy_tree, example_mesh_path
from meshkit.demo.tpch import DemoData, generate

TEST_SCALE = 0.01


@pytest.fixture(scope="session")
def example_mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example mesh; its data (scale 0.01) is generated into it once."""
    root = tmp_path_factory.mktemp("tpch-mesh")
    copy_tree(example_mesh_path(), root)
    generate(root / "data", scale=TEST_SCALE)
    return root


@pytest.fixture(scope="session")
def demo_data(example_mesh: Path) -> DemoData:
    """The data the example mesh copy holds (already generated: this call only checks it)."""
    return generate(example_mesh / "data", scale=TEST_SCALE)
