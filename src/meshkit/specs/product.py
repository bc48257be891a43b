"""The DataProduct kind: what a data product declares.

Its owners, input ports (files, other products, databases), the transform, the output table, the
schema (the contract: columns, types, keys, classification), quality checks (`checks.py`), SLOs,
retention, schedule, waivers and access. One `dataproduct.yaml` validates into one
`DataProductSpec`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from meshkit.specs.access import Masking, ProductAccess
from meshkit.specs.checks import QualityChecks, accepts_checks
from meshkit.specs.models import (
    NAME_PATTERN,
    PRODUCT_ID_PATTERN,
    SEMVER_PATTERN,
    Classification,
    Duration,
    Lifecycle,
    Spec,
    SqlType,
)
from meshkit.specs.policies import Declassify, Waiver


class Ownership(Spec):
    technical: str = Field(min_length=1, description="Technical owner: builds and runs it.")
    business: str = Field(min_length=1, description="Business owner: decides what it means.")
    steward: str | None = Field(None, description="Data steward: quality and compliance.")
    on_call: str | None = Field(None, description="Who is paged when a build or SLO fails.")
    escalation: str | None = Field(None, description="Escalation channel, e.g. '#sales-data'.")


FileFormat = Literal["parquet", "csv", "json", "ndjson"]


class DatabaseSource(Spec):
    url: str = Field(min_length=1, description="SQLAlchemy URL, e.g. sqlite:///crm.db.")
    table: str | None = None
    db_schema: str | None = Field(None, alias="schema")
    query: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self) -> DatabaseSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class InputPort(Spec):
    name: str = Field(pattern=NAME_PATTERN, description="The table name the transform uses.")
    description: str = ""
    file: str | None = Field(
        None, description="Path or glob, relative to the mesh root (or absolute)."
    )
    format: FileFormat | None = Field(None, description="File format; inferred from extension.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Reader options, e.g. {delimiter: '|', header: false}."
    )
    product: str | None = Field(
        None, pattern=PRODUCT_ID_PATTERN, description="Another data product: '<domain>.<name>'."
    )
    database: DatabaseSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> InputPort:
        given = [k for k in ("file", "product", "database") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "an input port needs exactly one of 'file', 'product' or 'database'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.file is None and (self.format is not None or self.options):
            raise ValueError("'format' and 'options' apply only to a 'file' input")
        return self

    @property
    def kind(self) -> Literal["file", "product", "database"]:
        if self.file is not None:
            return "file"
        if self.product is not None:
            return "product"
        return "database"


class Transform(Spec):
    sql: str | None = Field(None, description="A .sql file next to the spec (DuckDB dialect).")
    query: str | None = Field(None, description="Inline SQL instead of a file.")
    python: str | None = Field(
        None,
        pattern=r"^[\w./-]+\.py:[A-Za-z_]\w*$",
        description="'file.py:function'; the function gets the inputs as DuckDB relations.",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Transform:
        given = [k for k in ("sql", "query", "python") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a transform needs exactly one of 'sql', 'query' or 'python'")
        return self


class Column(Spec):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: SqlType
    description: str = ""
    nullable: bool = True
    unique: bool = False
    primary_key: bool = False
    classification: Classification | None = Field(
        None, description="Defaults to the product's classification."
    )
    pii: bool = False
    masking: Masking | None = Field(
        None, description="How consumers without clearance see this column."
    )
    declassify: Declassify | None = Field(
        None, description="Lower a classification inherited through lineage, with a reason."
    )


class SchemaSpec(Spec):
    columns: list[Column] = Field(min_length=1)

    @field_validator("columns")
    @classmethod
    def _unique_names(cls, columns: list[Column]) -> list[Column]:
        seen: set[str] = set()
        for column in columns:
            if column.name.lower() in seen:
                raise ValueError(f"column {column.name!r} is declared twice")
            seen.add(column.name.lower())
        return columns

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


class FreshnessSlo(Spec):
    max_age: Duration = Field(description="Published data may be at most this old.")
    column: str | None = Field(
        None, description="Timestamp column to measure; default: the publish time."
    )


class Slos(Spec):
    freshness: FreshnessSlo
    availability: float | None = Field(
        None, gt=0, le=100, description="Target % of scheduled builds that succeed."
    )


class Retention(Spec):
    period: Duration
    column: str = Field(description="Date/timestamp column the period applies to.")


class Schedule(Spec):
    cron: str = Field(description="Five-field cron expression (stored, not yet run).")
    timezone: str = "UTC"


class Output(Spec):
    table: str | None = Field(
        None, description="Table location; default '<warehouse>/<domain>/<name>'."
    )


class DataProductSpec(Spec):
    api_version: Literal["meshkit/v1"] = Field(alias="apiVersion")
    kind: Literal["DataProduct"]
    name: str = Field(pattern=NAME_PATTERN)
    domain: str | None = Field(
        None, description="Optional; must equal the domain folder it lives in."
    )
    version: str = Field(pattern=SEMVER_PATTERN, description="Semantic version of the contract.")
    status: Lifecycle = Lifecycle.DRAFT
    description: str = Field(min_length=1)
    tags: list[str] = Field(default=[])
    owner: Ownership
    classification: Classification = Classification.INTERNAL
    inputs: list[InputPort] = Field(min_length=1)
    transform: Transform
    output: Output = Output()
    schema_: SchemaSpec = Field(alias="schema")
    quality: QualityChecks = Field(default=[])
    slo: Slos | None = None
    retention: Retention | None = None
    schedule: Schedule | None = None
    waivers: list[Waiver] = Field(
        default_factory=list, description="Time-limited exceptions to named policies."
    )
    access: ProductAccess = Field(
        default_factory=ProductAccess, description="Who gets access how, and which rows."
    )

    @field_validator("inputs")
    @classmethod
    def _unique_ports(cls, inputs: list[InputPort]) -> list[InputPort]:
        seen: set[str] = set()
        for port in inputs:
            if port.name in seen:
                raise ValueError(f"input port {port.name!r} is declared twice")
            seen.add(port.name)
        return inputs


accepts_checks(DataProductSpec, "quality")
