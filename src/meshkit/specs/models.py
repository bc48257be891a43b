"""The building blocks every spec model shares, and the mesh's settings.

`Spec` (unknown keys are errors), names and versions, durations, SQL types, the enums the
kinds share (classification, lifecycle, severity), and `MeshSettings` with its storage and audit
settings. The models of each spec kind are built from these: `kinds.py` (Mesh, Domain),
`product.py` (DataProduct), `checks.py` (quality checks), `policies.py` (governance keys) and
`access.py` (access settings). The loader turns YAML into them (with file/line positions for
every error), `meshkit schema` prints their JSON Schema, and docs/specs.md documents every key.
"""

from __future__ import annotations

import re
from datetime import timedelta
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


def no_duplicates(names: list[str], what: str) -> None:
    """Raise the error pydantic reports when a list declares a name twice."""
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
