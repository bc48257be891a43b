"""A build killed (SIGKILL) at any point leaves the old version or the new one, never a partial one.

Each test kills a real ``build_worker.py`` process building ``shop.orders`` of a mesh whose
table already has versions 0 and 1 and whose input has changed since (so the new version's
content is distinguishable), then checks, with delta-rs and DuckDB rather than meshkit:

* the table opens and its latest version is the previous one or the next;
* its content is exactly the old version's or exactly the new data, never a mix or a part;
* every earlier version is still readable with its original content;
* staged files the killed build left under ``data/<run id>/`` are in no version;
* a normal rebuild afterwards publishes the new data as the next version, and the catalog
  lists every Delta version, including one committed by a process killed before it could
  record it, and leaves no run 'running' (``Workspace.reconcile``).
"""

from __future__ import annotations

import random
import time
from collections import deque
from typing import TYPE_CHECKING

import pytest

from meshkit.workspace import Workspace

if TYPE_CHECKING:
    from tests.build.conftest import BuildWorker, CrashMesh, StartWorker, WorkerRun

pytestmark = pytest.mark.slow

PRODUCT = "shop.orders"
RANDOM_SEED = 20240611
RANDOM_RUNS = 8
PRESTARTED = 3  # gated workers started ahead of the one in use


def assert_old_or_new(mesh: CrashMesh) -> int:
    """The table after a kill: old or new version, whole, with its history intact."""
    previous = mesh.latest_before
    assert previous is not None
    latest = mesh.delta().version()  # opens: the log is readable
    assert latest in (previous, previous + 1), f"latest version {latest}, had {previous}"
    content = mesh.content()
    if latest == previous:
        assert content == mesh.history[previous], "old version changed"
    else:
        assert content == mesh.new, "new version is not exactly the new data"
    # The latest version is made only of the files of the run that committed it: whatever
    # the killed build staged but did not commit (an orphaned data/<run id>/) is not visible.
    assert mesh.run_dirs() == {mesh.commit_run_id(latest)}
    for version, expected in mesh.history.items():
        assert mesh.content(version) == expected, f"version {version} lost or changed"
    return latest


def assert_rebuild_publishes(mesh: CrashMesh, latest: int) -> None:
    """A normal build after the kill succeeds, and the catalog knows every Delta version."""
    contents = {**mesh.history, latest: mesh.content()}
    with Workspace(mesh.root) as ws:
        listed = ws.show(PRODUCT).versions
        assert sorted(v.delta_version for v in listed) == list(range(latest + 1))
        [result] = ws.build([PRODUCT], force=True)  # up to date if the killed one committed
        assert result.ok, result.error
        assert result.delta_version == latest + 1
        listed = ws.show(PRODUCT).versions
    assert mesh.delta().version() == latest + 1
    assert mesh.content() == mesh.new
    assert mesh.run_dirs() == {result.run_id}
    for version, expected in contents.items():
        assert mesh.content(version) == expected, f"version {version} lost or changed"
    assert {v.delta_version: v.row_count for v in listed} == {
        **{v: c.rows for v, c in contents.items()},
        latest + 1: mesh.new.rows,
    }
    assert {v.delta_version: v.run_id for v in listed} == {
        v: mesh.commit_run_id(v) for v in range(latest + 2)
    }
    # No run is left 'running' by the dead process; every run that committed is a success.
    runs = mesh.catalog_runs()
    assert "running" not in runs.values(), runs
    for version in range(latest + 2):
        assert runs[mesh.commit_run_id(version)] == "success"


def progress_messages(run: WorkerRun) -> list[str]:
    return [
        line.removeprefix("PROGRESS ")
        for line in run.stdout.splitlines()
        if line.startswith("PROGRESS ")
    ]


# (kill point, the new version is committed, a staging folder with files is left behind)
KILL_POINTS = [
    pytest.param("reading inputs", False, False, id="before-inputs-are-read"),
    pytest.param("auditing staged data", False, True, id="after-staging"),
    pytest.param("publishing", False, True, id="before-commit"),
    pytest.param("committed", True, False, id="after-commit-before-catalog"),
    pytest.param("success", True, False, id="after-commit-and-catalog"),
]


@pytest.fixture(scope="module")
def kill_point_workers(
    crash_template: CrashMesh,
    tmp_path_factory: pytest.TempPathFactory,
    start_build_worker: StartWorker,
) -> dict[str, tuple[CrashMesh, BuildWorker]]:
    """One mesh copy and one gated worker per kill point, all started at once (imports are slow)."""
    folder = tmp_path_factory.mktemp("kill-points")
    started = {}
    for i, point in enumerate(KILL_POINTS):
        kill_at = str(point.values[0])
        mesh = crash_template.clone(folder / str(i))
        started[kill_at] = (mesh, start_build_worker(mesh.root, kill_at, go=True))
    return started


@pytest.mark.parametrize(("kill_at", "committed", "orphan"), KILL_POINTS)
def test_build_killed_at_a_precise_point(
    kill_point_workers: dict[str, tuple[CrashMesh, BuildWorker]],
    kill_at: str,
    committed: bool,
    orphan: bool,
) -> None:
    mesh, worker = kill_point_workers[kill_at]
    previous = mesh.latest_before
    assert previous is not None
    staged_before = mesh.staged_dirs()
    runs_before = mesh.catalog_runs()

    worker.go()
    run = worker.finish()

    assert run.killed, run.describe()
    messages = progress_messages(run)
    expected_last = "publishing" if kill_at == "committed" else kill_at
    assert messages[-1] == expected_last, run.describe()

    latest = assert_old_or_new(mesh)
    assert latest == (previous + 1 if committed else previous)

    [killed_run] = set(mesh.catalog_runs()) - set(runs_before)
    left = mesh.staged_dirs() - staged_before
    if orphan:  # staged, not committed: the files stay behind, invisible
        assert left == {killed_run}
        assert list((mesh.table / "data" / killed_run).glob("*.parquet"))
    elif not committed:  # killed before anything was staged
        assert left == set()
    if committed:
        assert left == {killed_run} == mesh.run_dirs()
        assert mesh.commit_run_id(latest) == killed_run
        recorded = mesh.catalog_versions()
        if kill_at == "committed":  # the catalog never heard of it: reconcile must find it
            assert latest not in recorded
            assert mesh.catalog_runs()[killed_run] == "running"
        else:
            assert recorded[latest] == killed_run
            assert mesh.catalog_runs()[killed_run] == "success"
    else:
        assert previous + 1 not in mesh.catalog_versions()

    assert_rebuild_publishes(mesh, latest)
    assert mesh.catalog_runs()[killed_run] == ("success" if committed else "failed")


def test_build_killed_at_random_moments(
    crash_template: CrashMesh,
    tmp_path_factory: pytest.TempPathFactory,
    start_build_worker: StartWorker,
) -> None:
    """SIGKILL from outside, at seeded random moments spread over a normal build's duration.

    The first worker is not killed: it measures how long a build takes from its start to its
    final "success" (imports excluded). Workers are started a few ahead of use, gated, so their
    imports overlap the previous run's checks.
    """
    folder = tmp_path_factory.mktemp("random-kills")
    pending: deque[tuple[CrashMesh, BuildWorker]] = deque()
    launched = 0

    def launch() -> None:
        nonlocal launched
        if launched <= RANDOM_RUNS:
            mesh = crash_template.clone(folder / str(launched))
            pending.append((mesh, start_build_worker(mesh.root, go=True)))
            launched += 1

    for _ in range(PRESTARTED):
        launch()

    mesh, timing = pending.popleft()
    started = timing.go()
    duration = timing.wait_for("PROGRESS success") - started
    normal = timing.finish()
    launch()
    assert normal.returncode == 0, normal.describe()
    assert normal.result()["status"] == "published"
    assert mesh.content() == mesh.new

    rng = random.Random(RANDOM_SEED)
    outcomes = []
    for i in range(RANDOM_RUNS):
        mesh, worker = pending.popleft()
        # Stratified: run i dies somewhere in the i-th eighth of the build.
        delay = duration * (i + rng.random()) / RANDOM_RUNS
        worker.go()
        time.sleep(delay)
        worker.kill()
        run = worker.finish()
        launch()
        assert run.killed or run.returncode == 0, run.describe()
        messages = progress_messages(run)

        latest = assert_old_or_new(mesh)
        outcomes.append((round(delay, 3), messages[-1] if messages else "-", latest))
        assert_rebuild_publishes(mesh, latest)

    print("random kills (delay s, last progress message, latest version):", outcomes)
    previous = crash_template.latest_before
    assert any(o[2] == previous for o in outcomes), f"no kill before the commit: {outcomes}"
