"""What an engine is: the one small interface a build needs from a compute engine (DuckDB, or
later Spark), with its capabilities declared as class attributes that callers ask instead of
checking which engine it is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import pyarrow as pa
from sqlglot import exp


@dataclass(frozen=True)
class Source:
    """An input port resolved to something an engine can scan."""

    name: str
    reader: Literal["parquet", "csv", "json", "ndjson"]
    paths: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    columns: list[tuple[str, str]] | None = None  # typed empty relation when there are no files


class Session(Protocol):
    """One build's connection. Closed when the build ends."""

    dialect: str
    """The sqlglot dialect the session's SQL is rendered in (its engine's `dialect`)."""

    def register(self, source: Source) -> None: ...

    def describe(self, query: exp.Query) -> list[tuple[str, str]]: ...

    def stage(self, query: exp.Query, dest: Path) -> None: ...

    def stage_arrow(
        self,
        data: pa.Table | pa.RecordBatchReader,
        dest: Path,
        *,
        columns: Sequence[str],
        where: exp.Expr | None = None,
    ) -> None: ...

    def describe_arrow(self, schema: pa.Schema) -> list[tuple[str, str]]: ...

    def relation(self, name: str) -> Any: ...

    def fetch(self, query: exp.Expr, params: Sequence[Any] = ()) -> pa.Table: ...

    def close(self) -> None: ...


class Engine(Protocol):
    """A compute engine, made from the mesh's settings (`platform.staging_threads`,
    `platform.memory_limit`) and registered by `name` in `engines.registry`."""

    name: ClassVar[str]
    """What `settings.engine` in mesh.yaml names it by."""
    dialect: ClassVar[str]
    """The sqlglot dialect of its SQL: transforms, checks, masks and row filters are read,
    and generated SQL rendered, in it."""
    functions_docs: ClassVar[str]
    """Where its SQL functions are documented, for hints ("duckdb.org")."""
    supports_python_transforms: ClassVar[bool]
    """Whether `Session.relation`, `describe_arrow` and `stage_arrow` work, so that Python
    transforms can run on it; a build of a Python product on an engine without fails."""
    serving: ClassVar[type[Serving] | None]
    """The engine that serves consumers' queries over the published files (`Serving`), or
    None: queries on a mesh whose engine serves none are refused."""

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None: ...

    def session(self) -> Session: ...


class Stop(Protocol):
    """A query's stop switch, as a serving engine uses it (`meshkit.access.query.Cancel`)."""

    def check(self) -> None:
        """Raise if the switch was thrown."""

    def hooked(self, interrupt: Callable[[], None]) -> AbstractContextManager[None]:
        """Call `interrupt` whenever the switch is thrown while the block runs."""


class Serving(Protocol):
    """What serves a checked query: a database that can read the queried versions' files and
    nothing else, one per query, within a timeout; errors that show no values."""

    name: ClassVar[str]
    dialect: ClassVar[str]
    """The dialect the query guard, masks and row filters are read and rendered in."""

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None: ...

    @classmethod
    def view_sql(
        cls,
        product: str,
        projections: Sequence[exp.Expr],
        files: Sequence[str],
        *,
        columns: Sequence[tuple[str, str]],
        where: exp.Expr | None = None,
    ) -> str:
        """The view of a product (`<domain>.<name>`) over `files`, as this engine writes it."""
        ...

    def run(
        self,
        sql: str,
        *,
        files: Sequence[str],
        schemas: Sequence[str],
        views: Sequence[str],
        timeout_s: float,
        stop: Stop,
        failed_hint: Any = None,
    ) -> pa.Table:
        """The result of `sql` over `views`, reading only `files`."""
        ...
