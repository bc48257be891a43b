"""What an engine is: the one small interface a build needs from DuckDB (or, later, Spark)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

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
    name: str

    def session(self) -> Session: ...
