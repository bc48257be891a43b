"""Build one data product: ingest, transform, stage, audit, publish (write-audit-publish)."""

from __future__ import annotations

import importlib.util
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from meshkit.builder import contract, inputs
from meshkit.builder.quality import STAGED, THIS, CheckResult, run_checks
from meshkit.engines.base import Engine, Session, Source
from meshkit.errors import BuildError, ConflictError, GateFailure, MeshkitError, QualityGateError
from meshkit.specs.mesh import Mesh, Product
from meshkit.sql.generate import project
from meshkit.tables.delta import DeltaTables, Snapshot, row_count, staged_schema, table_schema
from meshkit.tables.local import local_path
from meshkit.tables.store import Location

Progress = Callable[[str, str], None]  # (product id, what is happening)


class BuildStatus(StrEnum):
    """How a product's build ended. The values are what JSON, the CLI and the API show."""

    PUBLISHED = "published"
    UP_TO_DATE = "up_to_date"
    """Spec, code and inputs unchanged since its newest version: nothing was published."""
    FAILED = "failed"
    BLOCKED = "blocked"
    """A required policy or its quality gate refused it: nothing was published."""
    SKIPPED = "skipped"
    """An upstream product failed, so it was not built."""
    CONFLICT = "conflict"
    """Another build committed first: nothing was published."""

    @property
    def ok(self) -> bool:
        """Whether consumers see the product's current data (published now or before)."""
        return self in (BuildStatus.PUBLISHED, BuildStatus.UP_TO_DATE)

    @property
    def label(self) -> str:
        """As a progress line says it: ``up to date``."""
        return self.value.replace("_", " ")

    @classmethod
    def of_error(cls, error: MeshkitError) -> BuildStatus:
        """The status of a build that raised ``error``."""
        if isinstance(error, ConflictError):
            return cls.CONFLICT
        if isinstance(error, QualityGateError):
            return cls.BLOCKED
        return cls.FAILED


@dataclass
class BuildResult:
    product_id: str
    status: BuildStatus
    run_id: str | None = None
    delta_version: int | None = None
    rows: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    error: MeshkitError | None = None
    reasons: list[str] = field(default_factory=list)
    """Why it was built (what changed since the version it replaces), or, when up to date,
    what it was compared with."""

    @property
    def ok(self) -> bool:
        return self.status.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product_id,
            "status": str(self.status),
            "run_id": self.run_id,
            "delta_version": self.delta_version,
            "rows": self.rows,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "reasons": self.reasons,
            "checks": [
                {
                    "name": c.name,
                    "type": c.type,
                    "column": c.column,
                    "severity": str(c.severity),
                    "passed": c.passed,
                    "measured": c.measured,
                    "threshold": c.threshold,
                    "message": c.message,
                    "samples": c.samples,
                }
                for c in self.checks
            ],
            "error": None
            if self.error is None
            else {
                "type": type(self.error).__name__,
                "message": self.error.message,
                "hint": self.error.hint,
                "problems": [p.to_dict() for p in self.error.problems],
            },
        }


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def transform_query(product: Product, dialect: str) -> exp.Query:
    """The product's SQL transform as sqlglot reads it in `dialect` (validated when loaded)."""
    parsed = sqlglot.parse_one(product.transform_text or "", dialect=dialect)
    assert isinstance(parsed, exp.Query)
    return parsed


def register_inputs(
    mesh: Mesh,
    product: Product,
    session: Session,
    tables: DeltaTables,
    scratch: Path,
    pinned: dict[str, Snapshot | None],
) -> None:
    for port in product.spec.inputs:
        source: Source
        if port.file is not None:
            source = inputs.file_source(mesh, product, port)
        elif port.product is not None:
            source = inputs.product_source(
                product, port, pinned.get(port.product), mesh.products[port.product]
            )
        else:
            source = inputs.database_source(mesh, product, port, scratch)
        session.register(source)


def _python_output(product: Product, session: Session) -> pa.Table | pa.RecordBatchReader:
    assert product.transform_file is not None
    assert product.spec.transform.python is not None
    function_name = product.spec.transform.python.split(":")[1]
    module_name = f"meshkit_transform_{product.domain}_{product.spec.name}"
    spec = importlib.util.spec_from_file_location(module_name, product.transform_file)
    if spec is None or spec.loader is None:
        raise BuildError(f"{product.id}: cannot import {product.transform_file}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        function = getattr(module, function_name)
        relations = {p.name: session.relation(p.name) for p in product.spec.inputs}
        result = function(**relations)
    except MeshkitError:
        raise
    except Exception as err:  # the user's code: report it, with where it came from
        raise BuildError(
            f"{product.id}: the Python transform raised {type(err).__name__}: {err}",
            hint=f"see {product.transform_file}; the function gets each input as a DuckDB relation "
            "(call .arrow(), .df() or .pl() on it)",
        ) from err
    return _to_arrow(product, result)


def _to_arrow(product: Product, result: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(result, pa.Table | pa.RecordBatchReader):
        return result
    if hasattr(result, "to_arrow_table"):  # a DuckDB relation
        return result.to_arrow_table()
    if hasattr(result, "__arrow_c_stream__"):  # Polars, pandas >= 2.2, any Arrow producer
        return pa.RecordBatchReader.from_stream(result)
    type_name = type(result).__module__ + "." + type(result).__qualname__
    if type_name.startswith("pandas."):
        return pa.Table.from_pandas(result, preserve_index=False)
    raise BuildError(
        f"{product.id}: the Python transform returned {type_name}",
        hint="return a pyarrow Table, a pandas or Polars DataFrame, or a DuckDB relation",
    )


def build_product(
    mesh: Mesh,
    product: Product,
    *,
    engine: Engine,
    tables: DeltaTables,
    run_id: str | None = None,
    pinned: dict[str, Snapshot | None],
    progress: Progress = lambda pid, msg: None,
    metadata: dict[str, str] | None = None,
    now: datetime | None = None,
) -> BuildResult:
    """Run the whole write-audit-publish path for one product. Never leaves a partial version."""
    run_id = run_id or uuid.uuid4().hex
    timer = _Timer()
    result = BuildResult(product.id, BuildStatus.FAILED, run_id=run_id, timings=timer.timings)
    if product.spec.transform.python is not None and not engine.supports_python_transforms:
        result.error = BuildError(
            f"{product.id}: the engine {engine.name!r} does not run Python transforms",
            hint="write the transform in SQL, or set settings.engine to an engine that runs "
            "Python transforms",
        )
        return result
    table = tables.location(product.id, product.spec.output.table)
    current = tables.snapshot(table)
    read_version = current.version if current is not None else None
    scratch_dir = tempfile.TemporaryDirectory(prefix="meshkit-", ignore_cleanup_errors=True)
    scratch = Path(scratch_dir.name)  # database inputs are exported here
    stage: Location | None = None
    session = engine.session()
    try:
        with timer.stage("ingest"):
            progress(product.id, "reading inputs")
            register_inputs(mesh, product, session, tables, scratch, pinned)
        declared = [c.name for c in product.spec.schema_.columns]
        stage = tables.stage_dir(table, run_id)
        with timer.stage("transform"):
            if product.spec.transform.python is not None:
                progress(product.id, "running Python transform")
                data = _python_output(product, session)
                actual = session.describe_arrow(data.schema)
                contract.check(product, actual, dialect=session.dialect)
                by_lower = {name.lower(): name for name, _ in actual}
                session.stage_arrow(
                    data,
                    local_path(stage),  # engines stage into a local folder today
                    columns=[by_lower[c.lower()] for c in declared],
                    where=retention_predicate(product, dialect=session.dialect, now=now),
                )
            else:
                query = project_checked(product, session, now=now)
                progress(product.id, "transforming and staging")
                session.stage(query, local_path(stage))
        with timer.stage("audit"):
            progress(product.id, "auditing staged data")
            staged_files = tables.staged_files(stage)
            columns = [(c.name, c.type) for c in product.spec.schema_.columns]
            session.register(
                Source(name=STAGED, reader="parquet", paths=staged_files, columns=columns)
            )
            session.register(
                Source(name=THIS, reader="parquet", paths=staged_files, columns=columns)
            )
            clock = now or datetime.now(UTC)
            rows, checks = run_checks(product, session, files=staged_files, now=clock)
            result.rows, result.checks = rows, checks
        blocking = [c for c in checks if c.blocking]
        if blocking:
            raise QualityGateError(
                product.id, [GateFailure(c.name, c.message, c.samples) for c in blocking]
            )
        with timer.stage("publish"):
            progress(product.id, "publishing")
            nullable = {
                c.name: c.nullable and not c.primary_key for c in product.spec.schema_.columns
            }
            comments = {c.name: c.description for c in product.spec.schema_.columns}
            schema = table_schema(staged_schema(stage), nullable=nullable, comments=comments)
            commit_meta = {
                "meshkit.run_id": run_id,
                "meshkit.product": product.id,
                "meshkit.version": product.spec.version,
                "meshkit.spec_hash": product.spec_hash,
                "meshkit.rows": str(row_count(stage)),
                **(metadata or {}),
            }
            staged, stage = stage, None  # the table owns it now (commit() discards it on failure)
            result.delta_version = tables.commit(
                table,
                staged,
                schema=schema,
                read_version=read_version,
                metadata=commit_meta,
                name=product.id,
                description=product.spec.description,
                files=staged_files,  # exactly what the audit read
            )
        result.status = BuildStatus.PUBLISHED
    except OSError as err:  # the warehouse folder cannot be written, a disk is full...
        result.error = BuildError(
            f"{product.id}: {err.strerror or err} ({err.filename or 'the warehouse'})",
            hint="check that the warehouse folder exists and is writable, and the disk has room",
        )
        result.status = BuildStatus.FAILED
    except MeshkitError as err:
        result.error = err
        result.status = BuildStatus.of_error(err)
    finally:
        session.close()
        scratch_dir.cleanup()
        if stage is not None:
            tables.discard(stage)
    return result


def project_checked(
    product: Product, session: Session, *, now: datetime | None = None
) -> exp.Query:
    """The transform, projected onto the contract's columns after checking its plan."""
    query = transform_query(product, session.dialect)
    actual = session.describe(query)
    contract.check(product, actual, dialect=session.dialect)
    by_lower = {name.lower(): name for name, _ in actual}
    projected = project(query, [by_lower[c.name.lower()] for c in product.spec.schema_.columns])
    keep = retention_predicate(product, dialect=session.dialect, now=now)
    return projected if keep is None else projected.where(keep)


def retention_predicate(
    product: Product, *, dialect: str, now: datetime | None = None
) -> exp.Expr | None:
    """Rows to keep under the product's retention period, so a rebuild never brings back what
    `meshkit retention apply` deleted. Rows whose date is NULL are kept (as retention apply does)."""
    retention = product.spec.retention
    if retention is None:
        return None
    column = product.spec.schema_.column(retention.column)
    assert column is not None  # validated when the spec loaded
    cutoff = (now or datetime.now(UTC)) - retention.period
    sql_type = exp.DataType.build(column.type, dialect=dialect)
    if sql_type.this == exp.DataType.Type.DATE:
        bound = exp.cast(exp.Literal.string(cutoff.date().isoformat()), sql_type)
    else:
        text = cutoff.strftime("%Y-%m-%d %H:%M:%S.%f")
        if sql_type.this in (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ):
            text += "+00"
        bound = exp.cast(exp.Literal.string(text), sql_type)
    col = exp.column(column.name, quoted=True)
    return exp.or_(
        exp.Is(this=col, expression=exp.null()), exp.GTE(this=col.copy(), expression=bound)
    )
