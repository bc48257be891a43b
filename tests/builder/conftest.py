"""Fixtures for the crash-safety and concurrency tests: real build processes on a small mesh.

The mesh has one product, ``shop.orders``, reading ``data/orders.parquet`` (written with DuckDB)
through a SQL transform, with a few quality checks. ``published_mesh`` is a copy of a mesh
already published twice (versions 0 and 1, different data) whose input has since changed, so a
rebuild publishes a third, distinguishable content. Builds run in ``build_worker.py``
processes, which the tests kill or race.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake import DeltaTable

from meshkit.catalog import Catalog
from meshkit.workspace import Workspace

CRASH_PRODUCT = "shop.orders"
WORKER_SCRIPT = Path(__file__).with_name("build_worker.py")
WORKER_TIMEOUT_S = 120.0

_MESH_YAML = """\
apiVersion: meshkit/v1
kind: Mesh
name: crash-mesh
settings:
  warehouse: warehouse
  catalog: sqlite:///.meshkit/catalog.db
  staging_threads: 1
"""

_DOMAIN_YAML = """\
apiVersion: meshkit/v1
kind: Domain
name: shop
description: The web shop.
type: source-aligned
owner: shop-team
"""

_PRODUCT_YAML = """\
apiVersion: meshkit/v1
kind: DataProduct
name: orders
domain: shop
version: 1.0.0
status: active
description: One row per order; rebuilt, killed and raced by the crash and concurrency tests.
owner:
  technical: ana@example.com
  business: raj@example.com
inputs:
  - name: raw
    file: data/orders.parquet
transform:
  sql: transform.sql
schema:
  columns:
    - name: order_id
      type: BIGINT
      nullable: false
      primary_key: true
    - name: amount
      type: BIGINT
      nullable: false
    - name: status
      type: VARCHAR
      nullable: false
quality:
  - type: unique
    columns: [order_id]
  - type: range
    column: amount
    min: 0
    max: 100000
  - type: accepted_values
    column: status
    values: [placed, paid, shipped]
"""

_TRANSFORM_SQL = "SELECT order_id, amount * 10 AS amount, status FROM raw\n"


@dataclass(frozen=True)
class Fingerprint:
    """What a version holds: row count, a column sum and an order-independent row checksum."""

    rows: int
    amount: int
    checksum: int


@dataclass(frozen=True)
class Dataset:
    """Input rows ``order_id = offset .. offset+rows-1``; ``salt`` changes the amounts."""

    rows: int
    offset: int
    salt: int


# Versions 0 and 1 of the published mesh, then what its input holds now (the next build).
FIRST = Dataset(rows=180_000, offset=0, salt=1)
PREVIOUS = Dataset(rows=200_000, offset=0, salt=2)
NEW = Dataset(rows=150_000, offset=500_000, salt=3)


def write_orders(root: Path, data: Dataset) -> None:
    (root / "data").mkdir(exist_ok=True)
    target = root / "data" / "orders.parquet"
    tmp = target.with_suffix(".tmp")
    duckdb.execute(
        f"""
        COPY (
            SELECT
                (i + {data.offset})::BIGINT AS order_id,
                ((i * 7919 + {data.salt} * 104729) % 10000)::BIGINT AS amount,
                ['placed', 'paid', 'shipped'][((i + {data.salt}) % 3)::INTEGER + 1] AS status
            FROM range({data.rows}) t(i)
        ) TO '{tmp}' (FORMAT parquet)
        """
    )
    tmp.replace(target)


def write_crash_mesh(root: Path, data: Dataset) -> Path:
    product = root / "domains" / "shop" / "products" / "orders"
    product.mkdir(parents=True)
    (root / "mesh.yaml").write_text(_MESH_YAML)
    (root / "domains" / "shop" / "domain.yaml").write_text(_DOMAIN_YAML)
    (product / "dataproduct.yaml").write_text(_PRODUCT_YAML)
    (product / "transform.sql").write_text(_TRANSFORM_SQL)
    write_orders(root, data)
    return root


def fingerprint(files: list[str]) -> Fingerprint:
    """The fingerprint of a set of Parquet files (a version's ``file_uris()``), read with DuckDB."""
    paths = [f.removeprefix("file://") for f in files]
    assert paths, "a published version has no files"
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT count(*), coalesce(sum(amount), 0), "
            "coalesce(sum(hash(order_id, amount, status) % 1000000007), 0) "
            "FROM read_parquet(?)",
            [paths],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return Fingerprint(int(row[0]), int(row[1]), int(row[2]))


def input_fingerprint(root: Path) -> Fingerprint:
    """What a build of the mesh's current input publishes (the transform scales amounts by 10)."""
    con = duckdb.connect()
    try:
        row = con.execute(
            "SELECT count(*), coalesce(sum(amount * 10), 0), "
            "coalesce(sum(hash(order_id, amount * 10, status) % 1000000007), 0) "
            "FROM read_parquet(?)",
            [str(root / "data" / "orders.parquet")],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return Fingerprint(int(row[0]), int(row[1]), int(row[2]))


@dataclass
class CrashMesh:
    """A mesh on disk and what each of its published versions (and the next build) holds."""

    root: Path
    history: dict[int, Fingerprint]  # Delta version -> content, for every published version
    new: Fingerprint  # what a build of the current input publishes

    @property
    def table(self) -> Path:
        return self.root / "warehouse" / "shop" / "orders"

    @property
    def catalog_url(self) -> str:
        return f"sqlite:///{self.root / '.meshkit' / 'catalog.db'}"

    @property
    def latest_before(self) -> int | None:
        """The latest version before the test ran anything (None: never published)."""
        return max(self.history) if self.history else None

    def staged_dirs(self) -> set[str]:
        """Run ids with a folder of staged files under the table's ``data/``."""
        data = self.table / "data"
        return {p.name for p in data.iterdir() if p.is_dir()} if data.is_dir() else set()

    def clone(self, dest: Path) -> CrashMesh:
        """A private copy (specs, data, warehouse and catalog) that a test may change."""
        shutil.copytree(self.root, dest)
        return CrashMesh(root=dest, history=dict(self.history), new=self.new)

    def delta(self, version: int | None = None) -> DeltaTable:
        return DeltaTable(str(self.table), version=version)

    def content(self, version: int | None = None) -> Fingerprint:
        """What the table holds at ``version`` (default: latest), read over its file URIs."""
        return fingerprint(self.delta(version).file_uris())

    def run_dirs(self, version: int | None = None) -> set[str]:
        """The staging folders (run ids) the files of ``version`` live in."""
        return {
            Path(uri.removeprefix("file://")).parent.name for uri in self.delta(version).file_uris()
        }

    def commit_run_id(self, version: int) -> str:
        """The run id meshkit wrote into the metadata of the commit that made ``version``."""
        for entry in self.delta().history():
            if int(entry["version"]) == version:
                return str(entry["meshkit.run_id"])
        raise AssertionError(f"no commit for version {version}")

    def catalog_versions(self) -> dict[int, str]:
        """Delta version -> run id, as the catalog holds them (read without reconciling)."""
        with Catalog(self.catalog_url) as catalog:
            return {v.delta_version: v.run_id for v in catalog.versions.of(CRASH_PRODUCT)}

    def catalog_runs(self) -> dict[str, str]:
        """Run id -> status of every run of the product in the catalog."""
        with Catalog(self.catalog_url) as catalog:
            return {r.id: r.status for r in catalog.runs.recent(CRASH_PRODUCT, limit=1000)}


@pytest.fixture(scope="session")
def crash_template(tmp_path_factory: pytest.TempPathFactory) -> CrashMesh:
    """Published twice in this process (versions 0 and 1), then its input changed (NEW)."""
    root = write_crash_mesh(tmp_path_factory.mktemp("crash-template") / "mesh", FIRST)
    history: dict[int, Fingerprint] = {}
    with Workspace(root) as ws:
        for version, data in enumerate((FIRST, PREVIOUS)):
            write_orders(root, data)
            [result] = ws.build([CRASH_PRODUCT])
            assert result.ok, result.error
            assert result.delta_version == version
            history[version] = input_fingerprint(root)
    write_orders(root, NEW)
    new = input_fingerprint(root)
    assert new not in history.values()
    template = CrashMesh(root=root, history=history, new=new)
    for version, expected in history.items():
        assert template.content(version) == expected
    return template


@pytest.fixture
def published_mesh(crash_template: CrashMesh, tmp_path: Path) -> CrashMesh:
    """A private copy of the template: versions 0 and 1 published, NEW data waiting."""
    return crash_template.clone(tmp_path / "mesh")


@pytest.fixture
def unpublished_mesh(tmp_path: Path) -> CrashMesh:
    """The same mesh, never built: its table does not exist yet."""
    root = write_crash_mesh(tmp_path / "fresh-mesh", NEW)
    return CrashMesh(root=root, history={}, new=input_fingerprint(root))


# ------------------------------------------------------------------------- worker processes


@dataclass
class WorkerRun:
    """One finished worker: exit code (negative: killed by that signal) and its output."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def result(self) -> dict[str, Any]:
        """The JSON the worker (or the CLI with --json) printed after READY and progress."""
        text = self.stdout
        start = text.find("{")
        assert start >= 0, f"no JSON result (exit {self.returncode}):\n{text}\n{self.stderr}"
        parsed: dict[str, Any] = json.loads(text[start:])
        return parsed

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class BuildWorker:
    """A ``build_worker.py`` process; stdout and stderr go to files so nothing can block."""

    def __init__(self, folder: Path, args: list[str], *, gated: bool) -> None:
        folder.mkdir(parents=True)
        self._stdout_path = folder / "stdout"
        self._stderr_path = folder / "stderr"
        self._go = folder / "go" if gated else None
        if self._go is not None:
            args = [*args, "--go", str(self._go)]
        with self._stdout_path.open("w") as out, self._stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER_SCRIPT), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def wait_for(self, text: str) -> float:
        """Wait until the worker printed ``text``; returns when it was seen (monotonic)."""
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while text not in self._stdout_path.read_text():
            if self.proc.poll() is not None:
                if text in self._stdout_path.read_text():
                    break
                raise AssertionError(f"worker exited before {text!r}:\n{self.finish().describe()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"worker never printed {text!r}")
            time.sleep(0.002)
        return time.monotonic()

    def wait_ready(self) -> float:
        """Wait until the worker printed READY (imports done, build about to start)."""
        return self.wait_for("READY")

    def go(self) -> float:
        """Start the build of a gated worker; returns when the build has begun."""
        assert self._go is not None, "not started with go=True"
        self.wait_ready()
        self._go.touch()
        return self.wait_for("BUILDING")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)

    def finish(self, timeout: float = WORKER_TIMEOUT_S) -> WorkerRun:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
            raise AssertionError(f"worker did not finish in {timeout} s") from None
        return WorkerRun(
            self.proc.returncode, self._stdout_path.read_text(), self._stderr_path.read_text()
        )


StartWorker = Callable[..., BuildWorker]


@pytest.fixture(scope="module")
def start_build_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartWorker]:
    """Start ``build_worker.py MESH [KILL_AT] [options]``.

    With ``go=True`` the worker imports and loads the mesh, then waits for ``worker.go()``: start
    such workers ahead so their slow start-up overlaps other work. Module-scoped so a module's
    fixtures can start workers too; every worker still running is killed at teardown.
    """
    folder = tmp_path_factory.mktemp("workers")
    started: list[BuildWorker] = []

    def start(mesh: Path, kill_at: str = "none", *options: str, go: bool = False) -> BuildWorker:
        worker = BuildWorker(folder / str(len(started)), [str(mesh), kill_at, *options], gated=go)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
        worker.proc.wait()
