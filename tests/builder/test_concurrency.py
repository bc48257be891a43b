"""Two builds of the same product at once, each without the other's build lock (as on two
hosts that share no lock): one wins, the other fails with a clear conflict.

Two real ``build_worker.py --no-lock`` processes build ``shop.orders`` of the same mesh (same
warehouse, same SQLite catalog). The race is made deterministic with a file barrier at
"publishing": each worker has staged and audited its data before either commits, so both
commits really compete for the same next Delta version. (With the lock, the default, the
second build waits for the first instead: tests/builder/test_many_builds.py.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meshkit.catalog import Catalog
from meshkit.workspace import Workspace

if TYPE_CHECKING:
    from tests.build.conftest import BuildWorker, CrashMesh, StartWorker, WorkerRun

pytestmark = pytest.mark.slow

PRODUCT = "shop.orders"


def start_party(
    start: StartWorker, mesh: CrashMesh, barrier: Path, party: str, *extra: str
) -> BuildWorker:
    return start(
        mesh.root, "none", "--barrier", str(barrier), "--party", party, "--no-lock", *extra
    )


def both_staged_before_either_committed(barrier: Path, runs: list[WorkerRun]) -> None:
    assert {p.name for p in barrier.glob("ready-*")} == {"ready-a", "ready-b"}
    for run in runs:
        assert run.returncode in (0, 5), run.describe()


def split(results: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(winner, loser) party names; exactly one build published."""
    statuses = {party: r["status"] for party, r in results.items()}
    assert sorted(statuses.values()) == ["conflict", "published"], results
    winner = next(p for p, s in statuses.items() if s == "published")
    loser = next(p for p, s in statuses.items() if s == "conflict")
    return winner, loser


def assert_conflict_message(error: dict[str, Any] | str, *, created: bool = False) -> None:
    """The loser says another build published (or, racing to create the table, created) the
    product, and that it published nothing itself."""
    message = error if isinstance(error, str) else str(error["message"])
    verb = "(published|created)" if created else "published"
    assert re.search(rf"another build {verb} {re.escape(PRODUCT)} while this one ran", message), (
        message
    )
    assert "this build published nothing" in message, message


def assert_table_holds_only_the_winner(mesh: CrashMesh, winner_run: str, loser_run: str) -> int:
    """Exactly one new version, the winner's whole data; history intact; loser left nothing."""
    expected = 0 if mesh.latest_before is None else mesh.latest_before + 1
    latest = mesh.delta().version()
    assert latest == expected, f"expected exactly one new version {expected}, got {latest}"
    assert mesh.content() == mesh.new
    assert mesh.commit_run_id(latest) == winner_run
    assert mesh.run_dirs() == {winner_run}
    for version, content in mesh.history.items():
        assert mesh.content(version) == content
    # The loser discarded what it staged (it failed cleanly, unlike a killed build).
    assert loser_run not in mesh.staged_dirs()
    return latest


def assert_catalog_records_the_race(
    mesh: CrashMesh, winner_run: str, loser_run: str, latest: int
) -> None:
    runs = mesh.catalog_runs()
    assert runs[winner_run] == "success"
    assert runs[loser_run] == "conflict"
    versions = mesh.catalog_versions()
    assert versions[latest] == winner_run
    assert loser_run not in versions.values()
    assert sorted(versions) == list(range(latest + 1))
    with Catalog(mesh.catalog_url) as catalog:
        [loser] = [r for r in catalog.runs.recent(PRODUCT, limit=100) if r.id == loser_run]
    assert loser.delta_version is None
    assert loser.error is not None
    assert "this build published nothing" in loser.error


def assert_next_build_publishes(mesh: CrashMesh, latest: int) -> None:
    with Workspace(mesh.root) as ws:
        [result] = ws.build([PRODUCT], force=True)  # the winner's version is up to date
        assert result.ok, result.error
        assert result.delta_version == latest + 1
        assert [v.delta_version for v in ws.show(PRODUCT).versions] == list(
            range(latest + 1, -1, -1)
        )
    assert mesh.content() == mesh.new


def test_two_builds_at_once_one_wins(
    published_mesh: CrashMesh, start_build_worker: StartWorker, tmp_path: Path
) -> None:
    mesh = published_mesh
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = {p: start_party(start_build_worker, mesh, barrier, p) for p in ("a", "b")}
    runs = {p: w.finish() for p, w in workers.items()}
    both_staged_before_either_committed(barrier, list(runs.values()))

    results = {p: run.result() for p, run in runs.items()}
    winner, loser = split(results)
    assert results[winner]["delta_version"] == 2
    assert results[loser]["delta_version"] is None
    assert results[loser]["error_type"] == "ConflictError"
    assert results[loser]["exit_code"] == 5
    assert_conflict_message(results[loser]["error"])
    assert "rerun" in results[loser]["hint"]

    latest = assert_table_holds_only_the_winner(
        mesh, results[winner]["run_id"], results[loser]["run_id"]
    )
    assert_catalog_records_the_race(
        mesh, results[winner]["run_id"], results[loser]["run_id"], latest
    )
    assert_next_build_publishes(mesh, latest)


def test_cli_build_that_loses_exits_with_conflict_code(
    published_mesh: CrashMesh, start_build_worker: StartWorker, tmp_path: Path
) -> None:
    """`meshkit build --json` staged alongside another build, which then commits first."""
    mesh = published_mesh
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    api = start_party(start_build_worker, mesh, barrier, "a")
    cli = start_party(
        start_build_worker, mesh, barrier, "b", "--cli", "--after", str(barrier / "done-a")
    )
    api_run, cli_run = api.finish(), cli.finish()
    both_staged_before_either_committed(barrier, [api_run, cli_run])

    assert api_run.returncode == 0, api_run.describe()
    won = api_run.result()
    assert won["status"] == "published", won

    assert cli_run.returncode == 5, cli_run.describe()  # 5: conflict with a concurrent build
    output = cli_run.result()
    assert output["ok"] is False
    [lost] = output["results"]
    assert lost["status"] == "conflict"
    assert lost["delta_version"] is None
    assert lost["error"]["type"] == "ConflictError"
    assert_conflict_message(lost["error"])

    latest = assert_table_holds_only_the_winner(mesh, won["run_id"], lost["run_id"])
    assert_catalog_records_the_race(mesh, won["run_id"], lost["run_id"], latest)
    assert_next_build_publishes(mesh, latest)


def test_first_ever_builds_race_to_create_the_table(
    unpublished_mesh: CrashMesh, start_build_worker: StartWorker, tmp_path: Path
) -> None:
    """No table and no catalog yet: both processes create the catalog, stage, then create."""
    mesh = unpublished_mesh
    assert not mesh.table.exists()
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    workers = {p: start_party(start_build_worker, mesh, barrier, p) for p in ("a", "b")}
    runs = {p: w.finish() for p, w in workers.items()}
    both_staged_before_either_committed(barrier, list(runs.values()))

    results = {p: run.result() for p, run in runs.items()}
    creates = [h for h in mesh.delta().history() if h["operation"] == "CREATE TABLE"]
    assert len(creates) == 1, "a retried CREATE would stack a second table on the first"
    winner, loser = split(results)
    assert results[winner]["delta_version"] == 0
    assert results[loser]["error_type"] == "ConflictError"
    assert results[loser]["exit_code"] == 5
    assert_conflict_message(results[loser]["error"], created=True)

    latest = assert_table_holds_only_the_winner(
        mesh, results[winner]["run_id"], results[loser]["run_id"]
    )
    assert latest == 0
    assert_catalog_records_the_race(
        mesh, results[winner]["run_id"], results[loser]["run_id"], latest
    )
    assert_next_build_publishes(mesh, latest)
