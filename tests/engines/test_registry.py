"""The engine registry: `settings.engine` picks the engine class a Workspace builds with, and a
new engine is one class registered under its name (here a small one, in the test)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from meshkit.engines import registry
from meshkit.engines.base import Engine, Serving, Session, Source
from meshkit.engines.duckdb import DuckDBEngine
from meshkit.engines.serving import DuckDBServing
from meshkit.errors import AccessDenied, SpecError
from meshkit.workspace import Workspace

import yaml_writer
from conftest import MakeMesh, product_spec


class RecordingSession:
    """A session over DuckDB's public engine API that keeps every query it was given."""

    dialect = "duckdb"

    def __init__(self, inner: Session, log: list[str]) -> None:
        self.inner = inner
        self.log = log

    def register(self, source: Source) -> None:
        self.log.append(f"register {source.name}")
        self.inner.register(source)

    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        self.log.append(f"describe {query.sql(dialect=self.dialect)}")
        return self.inner.describe(query)

    def stage(self, query: exp.Query, dest: Path) -> None:
        self.log.append(f"stage {query.sql(dialect=self.dialect)}")
        self.inner.stage(query, dest)

    def stage_arrow(
        self,
        data: pa.Table | pa.RecordBatchReader,
        dest: Path,
        *,
        columns: Sequence[str],
        where: exp.Expr | None = None,
    ) -> None:
        raise AssertionError("an engine without Python transforms is never asked for Arrow")

    def describe_arrow(self, schema: pa.Schema) -> list[tuple[str, str]]:
        raise AssertionError("an engine without Python transforms is never asked for Arrow")

    def relation(self, name: str) -> Any:
        raise AssertionError("an engine without Python transforms is never asked for relations")

    def fetch(self, query: exp.Expr, params: Sequence[Any] = ()) -> pa.Table:
        self.log.append(f"fetch {query.sql(dialect=self.dialect)}")
        return self.inner.fetch(query, params)

    def close(self) -> None:
        self.inner.close()


class RecordingEngine:
    """The test's engine: SQL only (no Python transforms), every query recorded."""

    name: ClassVar[str] = "recording"
    dialect: ClassVar[str] = "duckdb"
    functions_docs: ClassVar[str] = "duckdb.org"
    supports_python_transforms: ClassVar[bool] = False
    serving: ClassVar[type[Serving] | None] = DuckDBServing  # queries served as DuckDB does
    log: ClassVar[list[str]] = []

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.inner = DuckDBEngine(threads=threads, memory_limit=memory_limit)

    def session(self) -> Session:
        return RecordingSession(self.inner.session(), self.log)


@pytest.fixture
def recording() -> Iterator[type[RecordingEngine]]:
    RecordingEngine.log.clear()
    registry.register(RecordingEngine)
    try:
        yield RecordingEngine
    finally:
        registry.ENGINES.pop(RecordingEngine.name)


def _mesh(make_mesh: MakeMesh, engine: str, **product: Any) -> Path:
    columns = [{"name": "id", "type": "bigint"}, {"name": "doubled", "type": "double"}]
    spec = product_spec(
        "orders",
        **{
            "transform": {"query": "select id, amount * 2 as doubled from raw"},
            "schema": {"columns": columns},
            **product,
        },
    )
    root = make_mesh({"sales": {"orders": spec}})
    yaml_writer.dump(
        root / "mesh.yaml",
        {
            "apiVersion": "meshkit/v1",
            "kind": "Mesh",
            "name": "test-mesh",
            "settings": {"engine": engine},
        },
    )
    (root / "data").mkdir()
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "amount": [1.5, 2.0, 4.25]})
    pq.write_table(table, root / "data" / "orders.parquet")
    return root


def test_a_registered_engine_builds_a_product_end_to_end(
    make_mesh: MakeMesh,
    workspace_of: Callable[[Path], Workspace],
    recording: type[RecordingEngine],
) -> None:
    ws = workspace_of(_mesh(make_mesh, "recording"))
    assert isinstance(ws.engine, recording)
    ws.validate()  # binding the SQL runs on the mesh's engine too
    assert any(line.startswith("describe") for line in recording.log)
    recording.log.clear()
    [result] = ws.build()
    assert result.status == "published", result.error
    assert result.rows == 3
    assert any(line.startswith("register raw") for line in recording.log)
    assert any(line.startswith("stage") for line in recording.log)
    rows = ws.query("select id, doubled from sales.orders order by id").to_pylist()
    assert rows == [{"id": 1, "doubled": 3.0}, {"id": 2, "doubled": 4.0}, {"id": 3, "doubled": 8.5}]


def test_a_python_transform_on_an_engine_without_them_fails_with_a_hint(
    make_mesh: MakeMesh,
    workspace_of: Callable[[Path], Workspace],
    recording: type[RecordingEngine],
) -> None:
    root = _mesh(make_mesh, "recording", transform={"python": "transform.py:run"})
    (root / "domains/sales/products/orders/transform.py").write_text(
        "def run(raw):\n    return raw.arrow()\n"
    )
    [result] = workspace_of(root).build()
    assert result.status == "failed"
    assert result.error is not None
    assert "does not run Python transforms" in result.error.message
    assert recording.log == []  # no session was opened


def test_an_unknown_engine_is_a_located_problem_with_a_guess(
    make_mesh: MakeMesh, workspace_of: Callable[[Path], Workspace]
) -> None:
    root = _mesh(make_mesh, "duckbd")
    with pytest.raises(SpecError) as raised:
        workspace_of(root).validate()
    [problem] = [p for p in raised.value.problems if "engine" in p.message]
    assert problem.file is not None
    assert problem.file.name == "mesh.yaml"
    assert problem.line is not None
    assert problem.hint == "did you mean 'duckdb'?"


def test_engine_class_refuses_an_unknown_name_with_the_known_ones() -> None:
    with pytest.raises(SpecError) as raised:
        registry.engine_class("spark")
    [problem] = raised.value.problems
    assert problem.message == "unknown engine 'spark'"
    assert problem.path == "settings.engine"
    assert problem.hint == "use one of: 'duckdb'"


def test_an_engine_that_serves_no_queries_refuses_them(
    make_mesh: MakeMesh,
    workspace_of: Callable[[Path], Workspace],
    recording: type[RecordingEngine],
) -> None:
    """Fail closed: the query path asks the mesh's engine for its serving engine."""

    class BuildOnly(RecordingEngine):
        name: ClassVar[str] = "build-only"
        serving: ClassVar[type[Serving] | None] = None

    registry.register(BuildOnly)
    try:
        ws = workspace_of(_mesh(make_mesh, "build-only"))
        [result] = ws.build()
        assert result.status == "published", result.error
        with pytest.raises(AccessDenied, match="'build-only' serves no queries"):
            ws.query("select id from sales.orders")
    finally:
        registry.ENGINES.pop(BuildOnly.name)


def test_the_default_engine_is_duckdb_and_its_capabilities_are_class_attributes() -> None:
    cls: type[Engine] = registry.engine_class(registry.DEFAULT_ENGINE)
    assert cls is DuckDBEngine
    assert (cls.name, cls.dialect, cls.supports_python_transforms) == ("duckdb", "duckdb", True)
    assert cls.serving is DuckDBServing
    assert registry.serving_class("duckdb") is DuckDBServing
    assert registry.default_dialect() == "duckdb"


def test_importing_the_registry_does_not_load_an_engine() -> None:
    code = "import sys, meshkit.engines.registry; print('meshkit.engines.duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
