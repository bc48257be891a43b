"""The spec models: what a mesh, a domain and a data product declare.

These pydantic models are the single definition of the spec format. The loader turns YAML into
them (with file/line positions for every error), `meshkit schema` prints their JSON Schema, and
docs/specs.md documents every key.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from meshkit.engines.registry import DEFAULT_ENGINE, default_dialect, engine_names, unknown_engine
from meshkit.sql import types as sql_types

API_VERSION = "meshkit/v1"

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)
PRODUCT_ID_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: Any) -> timedelta:
    """Durations are written `30m`, `6h`, `7d`, `2w` (or a number of seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30m, 6h, 7d or 2w")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    raise ValueError(f"{value!r} is not a duration; write it as 30m, 6h, 7d or 2w")


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": _DURATION.pattern}, {"type": "number"}]}
    ),
]


def normalize_type(value: str, dialect: str | None = None) -> str:
    """Canonical spelling of a SQL type (`int8` -> `BIGINT`, `string` -> `VARCHAR`) in
    `dialect`, by default the default engine's (`engines.registry.DEFAULT_ENGINE`)."""
    return sql_types.normalize_type(value, dialect or default_dialect())


def _sql_type(value: Any, info: ValidationInfo) -> Any:
    """A declared type, normalized in the dialect of the validation context (`{"dialect": ...}`,
    when the caller knows the mesh's engine), else the default engine's."""
    if not isinstance(value, str):
        return value
    context = info.context if isinstance(info.context, dict) else {}
    dialect = context.get("dialect")
    return normalize_type(value, dialect if isinstance(dialect, str) else None)


SqlType = Annotated[str, BeforeValidator(_sql_type)]


class Spec(BaseModel):
    """Base of every spec model: unknown keys are errors (typos must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Classification(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class DomainType(StrEnum):
    SOURCE_ALIGNED = "source-aligned"
    AGGREGATE = "aggregate"
    CONSUMER_ALIGNED = "consumer-aligned"


class Lifecycle(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# --------------------------------------------------------------------------------------- mesh


# --------------------------------------------------------------------------------- governance


class Enforcement(StrEnum):
    REQUIRED = "required"  # a failure blocks validate and build
    RECOMMENDED = "recommended"  # a failure warns
    OPTIONAL = "optional"  # a failure is only reported


class PolicyScope(Spec):
    """Which products a policy applies to; an empty list means no restriction."""

    domains: list[str] = Field(default_factory=list, description="Only products of these domains.")
    tags: list[str] = Field(
        default_factory=list, description="Only products with any of these tags."
    )
    statuses: list[Lifecycle] = Field(
        default_factory=list, description="Only products in these lifecycle statuses."
    )


class PolicySpec(Spec):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Unique within its file.")
    description: str = ""
    rule: str | None = Field(
        None,
        description="A built-in rule (see docs/governance.md) or 'plugin:<entry point name>'.",
    )
    rego: str | None = Field(
        None, description="A .rego file (relative to the file declaring the policy)."
    )
    enforcement: Enforcement = Enforcement.REQUIRED
    scope: PolicyScope = Field(default_factory=PolicyScope)
    params: dict[str, Any] = Field(default_factory=dict, description="The rule's parameters.")

    @model_validator(mode="after")
    def _rule_or_rego(self) -> PolicySpec:
        if (self.rule is None) == (self.rego is None):
            raise ValueError("a policy needs exactly one of 'rule' or 'rego'")
        return self


class Governance(Spec):
    group: list[str] = Field(
        default_factory=list,
        description="The governance group: who may approve waivers.",
    )
    policies: list[PolicySpec] = Field(default_factory=list, description="Global policies.")

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, policies: list[PolicySpec]) -> list[PolicySpec]:
        _no_duplicates([p.name for p in policies], "policy")
        return policies


def _no_duplicates(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} {name!r} is declared twice")
        seen.add(name)


class Encryption(Spec):
    enabled: bool = Field(False, description="Whether data at rest is encrypted.")
    method: str | None = Field(
        None, description="How, e.g. 'LUKS full-disk', 'SSE-KMS'; required when enabled."
    )
    key: str | None = Field(None, description="Key reference, e.g. a KMS key ARN.")

    @model_validator(mode="after")
    def _method_when_enabled(self) -> Encryption:
        if self.enabled and not self.method:
            raise ValueError("say how data is encrypted: set 'method' (e.g. 'LUKS full-disk')")
        return self


class StorageSettings(Spec):
    backend: Literal["local"] = Field("local", description="Where the warehouse lives.")
    encryption: Encryption = Field(
        default_factory=Encryption,
        description="Declared encryption at rest of the warehouse (checked by encryption-at-rest).",
    )


class AuditSettings(Spec):
    enabled: bool = Field(True, description="Record builds, grants and queries in the audit trail.")
    key_file: str = Field(
        ".meshkit/audit-ed25519.pem",
        description="The platform's Ed25519 private key signing audit checkpoints (relative to "
        "the mesh root; created with mode 0600 when missing). Keep a copy of its public key "
        "elsewhere to verify the log independently.",
    )
    checkpoint_every: int = Field(
        100, ge=1, description="Sign a checkpoint of the hash chain every this many entries."
    )
    head_file: str | None = Field(
        None,
        description="File keeping a copy of the latest signed head outside the catalog, "
        "rewritten after each append (relative to the mesh root; default: audit-head.json "
        "next to key_file). `meshkit audit verify` checks the log against it: ship copies "
        "of it off the machine.",
    )


class MeshSettings(Spec):
    warehouse: str = Field(
        "warehouse",
        description="Folder where published Delta tables live (relative to the mesh root).",
    )
    catalog: str = Field(
        "sqlite:///.meshkit/catalog.db",
        description="SQLAlchemy URL of the catalog; relative sqlite paths are under the mesh root.",
    )
    engine: str = Field(
        DEFAULT_ENGINE,
        description="Default engine for transforms: a name in the engine registry "
        "(`meshkit.engines.registry`).",
    )
    staging_threads: int | None = Field(
        None, ge=1, description="Threads the engine may use (default: all cores)."
    )
    memory_limit: str | None = Field(
        None, description="Engine memory limit, e.g. '4GB' (default: engine's own, 80% of RAM)."
    )
    vacuum_retention: Duration = Field(
        timedelta(days=7),
        json_schema_extra={"default": "7d"},
        description="`meshkit vacuum` keeps files younger than this: time travel within it works, "
        "and a running build's staged files are never touched.",
    )
    storage: StorageSettings = Field(default_factory=StorageSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)

    @field_validator("engine")
    @classmethod
    def _registered_engine(cls, name: str) -> str:
        if name not in engine_names():
            problem = unknown_engine(name)
            raise ValueError(f"invalid value {name!r} for 'engine'; {problem.hint}")
        return name


class Principal(Spec):
    name: str = Field(min_length=1, description="A user's email or a service account's name.")
    kind: Literal["user", "service"] = "user"
    clearance: Classification = Field(
        Classification.INTERNAL,
        description="Columns classified above this are masked for this principal "
        "(unless it is a member of the owning domain).",
    )
    attributes: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="What row filters may compare with, as caller.<name> (e.g. region: EUROPE).",
    )


AccessEvent = Literal["requested", "approved", "denied", "revoked"]
ACCESS_EVENTS: tuple[AccessEvent, ...] = ("requested", "approved", "denied", "revoked")


class Webhook(Spec):
    url: str = Field(pattern=r"^https?://", description="Where access events are POSTed.")
    secret_env: str = Field(
        description="Environment variable holding the HMAC-SHA256 signing secret."
    )
    events: list[AccessEvent] = Field(
        default_factory=lambda: list(ACCESS_EVENTS),
        description="Which access-request state changes to send (default: all).",
    )


class AccessSettings(Spec):
    admins: list[str] = Field(
        default_factory=list,
        description="Mesh admins: create and revoke tokens over the API, read the audit log.",
    )
    principals: list[Principal] = Field(
        default_factory=list,
        description="Consumers' clearance and attributes. Domain members, admins and the "
        "governance group are principals too (clearance internal unless listed here).",
    )
    webhooks: list[Webhook] = Field(default_factory=list)
    query_timeout: Duration = Field(
        timedelta(seconds=30),
        json_schema_extra={"default": "30s"},
        description="A query running longer is cancelled.",
    )
    max_rows: int = Field(100_000, ge=1, description="Rows a query may return at most.")

    @field_validator("principals")
    @classmethod
    def _unique_principals(cls, principals: list[Principal]) -> list[Principal]:
        _no_duplicates([p.name for p in principals], "principal")
        return principals


class MeshSpec(Spec):
    api_version: Literal["meshkit/v1"] = Field(alias="apiVersion")
    kind: Literal["Mesh"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    description: str = ""
    settings: MeshSettings = MeshSettings()
    governance: Governance = Field(default_factory=Governance)
    access: AccessSettings = Field(default_factory=AccessSettings)


# ------------------------------------------------------------------------------------- domain


class Member(Spec):
    name: str = Field(min_length=1, description="Person or service account, e.g. an email.")
    role: Literal["owner", "maintainer", "steward", "viewer"]


class DomainSpec(Spec):
    api_version: Literal["meshkit/v1"] = Field(alias="apiVersion")
    kind: Literal["Domain"]
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    type: DomainType
    owner: str = Field(min_length=1, description="The team that owns this domain.")
    members: list[Member] = []
    policies: list[PolicySpec] = Field(
        default_factory=list,
        description="Domain policies: new rules, or a global policy's name to make it stricter.",
    )

    @field_validator("policies")
    @classmethod
    def _unique_policy_names(cls, policies: list[PolicySpec]) -> list[PolicySpec]:
        _no_duplicates([p.name for p in policies], "policy")
        return policies


# ------------------------------------------------------------------------------------ product


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


class Masking(Spec):
    rule: Literal["hash", "redact", "partial", "null", "sql"]
    keep: int = Field(4, ge=0, description="partial: how many trailing characters stay visible.")
    expression: str | None = Field(
        None, description="sql: a DuckDB expression over the column, e.g. left(email, 2) || '***'."
    )

    @model_validator(mode="after")
    def _expression_for_sql(self) -> Masking:
        if (self.rule == "sql") != (self.expression is not None):
            raise ValueError("'expression' goes with rule 'sql', and only with it")
        return self


class Declassify(Spec):
    to: Classification
    reason: str = Field(min_length=10, description="Why it is safe, e.g. 'SHA-256 hash'.")


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


class _Check(Spec):
    name: str | None = Field(None, description="Defaults to '<type>:<column>'.")
    severity: Severity = Severity.ERROR
    description: str = ""

    def label(self) -> str:
        if self.name:
            return self.name
        column = getattr(self, "column", None)
        columns = getattr(self, "columns", None)
        target = column or (",".join(columns) if columns else None)
        kind = str(getattr(self, "type", "check"))
        return f"{kind}:{target}" if target else kind


class RowCountCheck(_Check):
    type: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("row_count needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class NullFractionCheck(_Check):
    type: Literal["null_fraction"]
    column: str
    max: float = Field(ge=0, le=1, description="Largest allowed fraction of NULLs, 0..1.")


class UniqueCheck(_Check):
    type: Literal["unique"]
    columns: list[str] = Field(min_length=1)


class AcceptedValuesCheck(_Check):
    type: Literal["accepted_values"]
    column: str
    values: list[str | int | float | bool] = Field(min_length=1)


class RangeCheck(_Check):
    type: Literal["range"]
    column: str
    min: float | int | str | None = None
    max: float | int | str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("range needs 'min', 'max' or both")
        return self


class PatternCheck(_Check):
    type: Literal["pattern"]
    column: str
    pattern: str = Field(description="RE2 regular expression the whole value must match.")


class FreshnessCheck(_Check):
    type: Literal["freshness"]
    column: str
    max_age: Duration


class SqlCheck(_Check):
    type: Literal["sql"]
    query: str = Field(
        description="SELECT returning the failing rows; the staged data is the table 'this'."
    )
    max_failures: int = Field(0, ge=0)


QualityCheck = Annotated[
    RowCountCheck
    | NullFractionCheck
    | UniqueCheck
    | AcceptedValuesCheck
    | RangeCheck
    | PatternCheck
    | FreshnessCheck
    | SqlCheck,
    Field(discriminator="type"),
]

CHECK_TYPES = (
    "row_count",
    "null_fraction",
    "unique",
    "accepted_values",
    "range",
    "pattern",
    "freshness",
    "sql",
)


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


class AutoApprove(Spec):
    domains: list[str] = Field(
        default_factory=list,
        description="Members of these domains are granted at once ('own' means the owning one).",
    )
    max_classification: Classification = Field(
        Classification.INTERNAL,
        description="Only when every requested column is classified at most this.",
    )


class ProductAccess(Spec):
    auto_approve: AutoApprove | None = Field(
        None, description="Grant some requests without waiting for an owner."
    )
    row_filter: str | None = Field(
        None,
        description="A SQL predicate over the product's columns and caller.<attribute>, e.g. "
        "region = caller.region; consumers outside the owning domain see only matching rows.",
    )


class Waiver(Spec):
    policy: str = Field(description="The name of the policy waived.")
    reason: str = Field(min_length=10)
    approver: str = Field(description="A member of the governance group (mesh.yaml).")
    expires: date = Field(description="Last day the waiver applies (UTC).")


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
    tags: list[str] = []
    owner: Ownership
    classification: Classification = Classification.INTERNAL
    inputs: list[InputPort] = Field(min_length=1)
    transform: Transform
    output: Output = Output()
    schema_: SchemaSpec = Field(alias="schema")
    quality: list[QualityCheck] = []
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


SPEC_KINDS: dict[str, type[Spec]] = {
    "Mesh": MeshSpec,
    "Domain": DomainSpec,
    "DataProduct": DataProductSpec,
}
