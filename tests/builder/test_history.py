"""The table history meshkit reads, and the version a commit reports, while others commit.

delta-rs's ``DeltaTable.history()`` lists every commit file from the first on, including
commits that landed after the table was loaded, and numbers the list down from the loaded
version: one commit landing in between shifts every number by one and the oldest entry comes
out as version -1. The catalog recorded such phantom versions when a build reconciled while
another committed. meshkit now reads the history itself, naming each entry by its log file, and
finds the version of its own commit by its run id; these tests race real processes committing
to one table against both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshkit.tables.delta import DeltaTables, latest_version

WORKER = Path(__file__).with_name("commit_worker.py")
COMMITS_PER_WORKER = 25


def log_run_id(table: Path, version: int) -> str | None:
    """The run id in the commit file of `version`, read straight from the Delta log."""
    path = table / "_delta_log" / f"{version:020d}.json"
    for line in path.read_text().splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            run = action["commitInfo"].get("meshkit.run_id")
            return str(run) if run is not None else None
    return None


def publish(tables: DeltaTables, table: Path, run_id: str) -> int:
    stage = tables.stage_dir(table, run_id)
    data = pa.table({"run": [run_id]})
    pq.write_table(data, stage / "part-0.parquet")
    return tables.commit(
        table,
        stage,
        schema=data.schema,
        read_version=latest_version(table),
        metadata={"meshkit.run_id": run_id},
        name="shop.runs",
        description="One row per commit.",
    )


def test_history_names_each_version_by_its_log_file(tmp_path: Path) -> None:
    tables = DeltaTables(tmp_path)
    table = tmp_path / "shop" / "runs"
    assert tables.history(table) == []
    assert [publish(tables, table, f"run-{i}") for i in range(3)] == [0, 1, 2]

    history = tables.history(table)
    assert [e.version for e in history] == [2, 1, 0]
    assert [e.metadata["meshkit.run_id"] for e in history] == ["run-2", "run-1", "run-0"]
    assert {e.operation for e in history} == {"CREATE TABLE", "WRITE"}
    # The history as of a version ends there, whatever was committed since.
    assert [e.version for e in tables.history(table, version=1)] == [1, 0]
    assert tables.commit_info(table, 3) is None


@pytest.mark.slow
def test_history_and_commit_versions_while_two_processes_commit(tmp_path: Path) -> None:
    tables = DeltaTables(tmp_path)
    table = tmp_path / "shop" / "runs"
    publish(tables, table, "seed")
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(table), name, str(COMMITS_PER_WORKER)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    snapshots = []
    while any(w.poll() is None for w in workers):
        snapshots.append(tables.history(table))
    outputs = [w.communicate()[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0]

    # Every history read while the others committed: versions newest-first down to 0, none
    # negative or repeated, each entry's run id the one in that version's own log file.
    assert len(snapshots) > 1
    for history in snapshots:
        versions = [e.version for e in history]
        assert versions == list(range(versions[0], -1, -1)), versions
        for entry in history:
            assert entry.metadata.get("meshkit.run_id") == log_run_id(table, entry.version)

    # Every version a commit reported is the one its run's commit really got.
    reported = [json.loads(line) for out in outputs for line in out.splitlines()]
    assert len(reported) == 2 * COMMITS_PER_WORKER
    for commit in reported:
        assert log_run_id(table, commit["version"]) == commit["run_id"], commit
    assert len({c["version"] for c in reported}) == len(reported)
    assert latest_version(table) == 2 * COMMITS_PER_WORKER
