"""The default engine: DuckDB in-process, streaming Parquet in and out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from meshkit.engines.base import Source
from meshkit.engines.serving import DuckDBServing
from meshkit.errors import BuildError, InputError
from meshkit.sql.generate import (
    copy_to_parquet,
    create_view,
    empty_relation,
    project,
    table_function,
)

_PYTHON_OUTPUT = "__meshkit_python_output"
_READERS = {
    "parquet": "read_parquet",
    "csv": "read_csv",
    "json": "read_json",
    "ndjson": "read_json",
}


class DuckDBEngine:
    name = "duckdb"
    dialect = "duckdb"
    functions_docs = "duckdb.org"
    supports_python_transforms = True
    serving = DuckDBServing

    def __init__(self, *, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.threads = threads
        self.memory_limit = memory_limit

    def session(self) -> DuckDBSession:
        config: dict[str, Any] = {}
        if self.threads:
            config["threads"] = self.threads
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        con = duckdb.connect(":memory:", config=config)
        # a core module never prints: DuckDB draws a progress bar on stdout for a query over
        # 2 s, which would corrupt `--json` output on a slow or busy machine
        con.execute("SET enable_progress_bar = false")
        return DuckDBSession(con)


class DuckDBSession:
    dialect = DuckDBEngine.dialect

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def register(self, source: Source) -> None:
        if not source.paths:
            if source.columns is None:
                raise InputError(f"input '{source.name}' has no data and no known schema")
            query: exp.Query = empty_relation(source.columns, dialect=self.dialect)
        else:
            options = dict(source.options)
            if source.reader == "ndjson":
                options.setdefault("format", "newline_delimited")
            reader = table_function(_READERS[source.reader], source.paths, options)
            query = exp.select(exp.Star()).from_(reader)
        try:
            self.con.execute(create_view(source.name, query).sql(dialect=self.dialect))
            # Binding the view now surfaces unreadable files and bad options at the input.
            self.con.execute(
                exp.select(exp.Star())
                .from_(exp.table_(source.name, quoted=True))
                .limit(0)
                .sql(dialect=self.dialect)
            )
        except duckdb.Error as err:
            raise InputError(
                f"cannot read input '{source.name}': {_first_line(err)}",
                hint="check the path, the format and the reader options of this input port",
            ) from err

    def describe(self, query: exp.Query) -> list[tuple[str, str]]:
        """Output columns and types of `query`, found by binding it: no data is read."""
        try:
            relation = self.con.sql(query.sql(dialect=self.dialect))
        except duckdb.Error as err:
            raise BuildError(
                f"the transform does not bind: {_first_line(err)}",
                hint="check column and function names against the input ports",
            ) from err
        return [
            (str(name), str(kind))
            for name, kind in zip(relation.columns, relation.dtypes, strict=True)
        ]

    def stage(self, query: exp.Query, dest: Path) -> None:
        try:
            self.con.execute(copy_to_parquet(query, str(dest)).sql(dialect=self.dialect))
        except duckdb.Error as err:
            raise BuildError(
                f"the transform failed while running: {_first_line(err)}",
                hint="a value could not be converted or computed; fix the transform or its inputs",
            ) from err

    def stage_arrow(
        self,
        data: pa.Table | pa.RecordBatchReader,
        dest: Path,
        *,
        columns: Sequence[str],
        where: exp.Expr | None = None,
    ) -> None:
        self.con.register(_PYTHON_OUTPUT, data)
        try:
            query = project(exp.table_(_PYTHON_OUTPUT, quoted=True), columns)
            self.stage(query if where is None else query.where(where), dest)
        finally:
            self.con.unregister(_PYTHON_OUTPUT)

    def describe_arrow(self, schema: pa.Schema) -> list[tuple[str, str]]:
        """DuckDB's type for each Arrow column, so Python output meets the same contract."""
        self.con.register(_PYTHON_OUTPUT, pa.Table.from_batches([], schema=schema))
        try:
            return self.describe(
                exp.select(exp.Star()).from_(exp.table_(_PYTHON_OUTPUT, quoted=True))
            )
        finally:
            self.con.unregister(_PYTHON_OUTPUT)

    def relation(self, name: str) -> duckdb.DuckDBPyRelation:
        return self.con.table(name)

    def fetch(self, query: exp.Expr, params: Sequence[Any] = ()) -> pa.Table:
        try:
            return self.con.sql(
                query.sql(dialect=self.dialect), params=list(params) or None
            ).to_arrow_table()
        except duckdb.Error as err:
            raise BuildError(f"query failed: {_first_line(err)}") from err

    def execute(self, sql: str) -> None:
        try:
            self.con.execute(sql)
        except duckdb.Error as err:
            raise BuildError(f"query failed: {_first_line(err)}") from err

    def close(self) -> None:
        self.con.close()


def _first_line(err: Exception) -> str:
    return str(err).strip().split("\n")[0]
