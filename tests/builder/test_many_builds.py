"""Eight `meshkit build` processes on one mesh at once: each product is built once, the other
builds wait for it (saying whom they wait for) and find it up to date, every process exits 0,
and every version the catalog records is a real Delta commit of that run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshkit.catalog import Catalog
from meshkit.tables.delta import commit_versions, read_commit
from meshkit.tables.locks import build_lock
from meshkit.workspace import Workspace

pytestmark = pytest.mark.slow

PROCESSES = 8


def meshkit(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "meshkit", *args, "--mesh", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_eight_builds_at_once_record_only_real_versions(example_mesh: Path) -> None:
    builds = [meshkit(example_mesh, "build", "--json") for _ in range(PROCESSES)]
    outputs = [b.communicate(timeout=600) for b in builds]
    for build, (_, err) in zip(builds, outputs, strict=True):
        assert build.returncode == 0, err
    statuses: dict[str, list[str]] = {}
    for out, _ in outputs:
        for result in json.loads(out)["results"]:
            statuses.setdefault(result["product"], []).append(result["status"])
    for product, seen in statuses.items():
        # built once; every other process found it up to date (none failed or conflicted)
        assert sorted(seen) == ["published"] + ["up_to_date"] * (PROCESSES - 1), (product, seen)

    with Workspace(example_mesh) as ws:
        for pid in ws.mesh.products:
            ws.show(pid)  # reconciles, as any reader would
        catalog = Catalog(ws.catalog_url)
        try:
            for pid in ws.mesh.products:
                table = ws.table_of(pid)
                recorded = catalog.versions.of(pid)
                numbers = [v.delta_version for v in recorded]
                assert numbers == [0], (pid, numbers)  # published once, no phantom -1
                assert commit_versions(table) == [0]
                for version in recorded:
                    commit = read_commit(table, version.delta_version)
                    assert commit is not None, (pid, version.delta_version)
                    assert commit.metadata["meshkit.run_id"] == version.run_id
                    assert ws.snapshot(pid, version.delta_version) is not None
                runs = catalog.runs.recent(pid, limit=100)
                assert [r.status for r in runs] == ["success"], (pid, runs)
        finally:
            catalog.close()


def test_a_build_waits_for_another_build_of_the_product_and_says_whom(
    example_mesh: Path,
) -> None:
    with Workspace(example_mesh) as ws:
        table = ws.table_of("customer.customers")
    with build_lock(table, host="test-host"):
        build = meshkit(example_mesh, "build", "customer.customers", "--json")
        assert build.stderr is not None
        # it says whom it waits for (however long a busy machine takes to get there) ...
        said = build.stderr.readline()
        time.sleep(1)
        assert build.poll() is None  # ... and cannot finish while the lock is held
    out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    assert f"customer.customers: waiting for pid {os.getpid()} on test-host" in said
    (result,) = json.loads(out)["results"]
    assert result["status"] == "published"
