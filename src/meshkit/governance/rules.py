"""The built-in rules. Each is a function of one product's context that yields its violations.

A rule declares its parameters as a pydantic model, so `meshkit validate` rejects unknown or
mistyped parameters with the same located messages as any other spec key. Rules never print and
never raise for a product that breaks them: they yield Violations located at the key to fix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from meshkit.engines.registry import dialect_of
from meshkit.errors import MeshkitError
from meshkit.governance.findings import Violation
from meshkit.governance.lineage import ColumnClass
from meshkit.specs.mesh import Located, Mesh, Product
from meshkit.specs.models import Classification, Duration, Lifecycle
from meshkit.sql.lineage import LineageCache
from meshkit.urls import mask_url

SENSITIVE = (Classification.CONFIDENTIAL, Classification.RESTRICTED)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Context:
    """What a rule may look at: the product, its mesh, computed facts, and its parameters."""

    mesh: Mesh
    product: Product
    params: Any
    columns: Mapping[str, ColumnClass]  # effective classification after lineage
    previous_status: str | None  # the lifecycle status the catalog last saw
    raw_sources: Mapping[str, list[str]] = field(default_factory=dict)  # source -> product ids
    lineage: LineageCache | None = None  # derived lineage, shared by the rules of one evaluation

    def at(self, message: str, *loc: str | int, hint: str | None = None) -> Violation:
        """A violation located at `loc` in the product's spec file."""
        return _violation(self.product, message, loc, hint)

    def in_mesh(self, message: str, *loc: str | int, hint: str | None = None) -> Violation:
        """A violation located in mesh.yaml (platform settings)."""
        return _violation(self.mesh, message, loc, hint)


def _violation(
    located: Located, message: str, loc: tuple[str | int, ...], hint: str | None
) -> Violation:
    problem = located.problem(message, list(loc), hint=hint)
    return Violation(
        message,
        path=problem.path,
        hint=hint,
        file=problem.file,
        line=problem.line,
        column=problem.column,
    )


RuleFunction = Callable[[Context], Iterator[Violation]]


@dataclass(frozen=True)
class BuiltinRule:
    id: str
    description: str
    check: RuleFunction
    params: type[Params]


RULES: dict[str, BuiltinRule] = {}


def rule(
    id: str, description: str, params: type[Params] = Params
) -> Callable[[RuleFunction], RuleFunction]:
    def register(check: RuleFunction) -> RuleFunction:
        RULES[id] = BuiltinRule(id, description, check, params)
        return check

    return register


def _column_index(product: Product, name: str) -> int:
    return next(i for i, c in enumerate(product.spec.schema_.columns) if c.name == name)


# ---------------------------------------------------------------------------- security


@rule("encryption-at-rest", "The warehouse the product is published to is encrypted at rest.")
def encryption_at_rest(ctx: Context) -> Iterator[Violation]:
    storage = ctx.mesh.spec.settings.storage
    if not storage.encryption.enabled:
        yield ctx.in_mesh(
            f"the {storage.backend} warehouse is not declared encrypted at rest",
            "settings",
            "storage",
            "encryption",
            "enabled",
            hint="encrypt the disk or bucket, then declare it: settings.storage.encryption: "
            "{enabled: true, method: 'LUKS full-disk'}",
        )


class PiiMaskingParams(Params):
    classifications: list[Classification] = Field(
        default_factory=lambda: list(SENSITIVE),
        description="Columns at these classifications need a masking rule, like PII columns.",
    )


@rule(
    "pii-masking",
    "Every PII column, and every column classified confidential or restricted (declared or "
    "inherited through lineage), has a masking rule.",
    PiiMaskingParams,
)
def pii_masking(ctx: Context) -> Iterator[Violation]:
    params: PiiMaskingParams = ctx.params
    for column in ctx.product.spec.schema_.columns:
        if column.masking is not None:
            continue
        effective = ctx.columns.get(column.name)
        pii = effective.pii if effective is not None else column.pii
        level = (
            effective.classification
            if effective is not None
            else ctx.product.classification_of(column)
        )
        if not pii and level not in params.classifications:
            continue
        reason = "PII" if pii else f"classified {level}"
        inherited = effective.inherited_from if effective is not None else ()
        if inherited and not (column.pii or (column.classification in params.classifications)):
            reason += f", inherited from {', '.join(inherited)}"
        yield ctx.at(
            f"column '{column.name}' is {reason} but has no masking rule",
            "schema",
            "columns",
            _column_index(ctx.product, column.name),
            hint="add masking: {rule: hash} (or redact, partial, null, sql); if the value is no "
            "longer sensitive (a hash, an aggregate), declassify it with a reason",
        )


class LineageParams(Params):
    column_level: bool = Field(
        False, description="Also require column-level lineage of Python transforms (refuse them)."
    )


@rule(
    "data-lineage",
    "The product's inputs are described and its column lineage can be derived, so each build "
    "records where every column comes from.",
    LineageParams,
)
def data_lineage(ctx: Context) -> Iterator[Violation]:
    params: LineageParams = ctx.params
    spec = ctx.product.spec
    if spec.transform.python is not None:
        if params.column_level:
            yield ctx.at(
                "a Python transform has no derivable column-level lineage",
                "transform",
                "python",
                hint="write the transform in SQL, or set params: {column_level: false}",
            )
    elif ctx.product.upstream():  # lineage from files is by name: their columns come at build
        from meshkit.governance.lineage import product_lineage

        upstream = {
            p.product: ctx.mesh.products[p.product]
            for p in spec.inputs
            if p.product in ctx.mesh.products
        }
        try:
            dialect = dialect_of(ctx.mesh.spec.settings.engine)
            product_lineage(ctx.product, upstream, dialect=dialect, cache=ctx.lineage)
        except MeshkitError as err:
            yield ctx.at(
                f"column lineage cannot be derived from the transform: {err.message}",
                "transform",
                hint=err.hint or "check the column and table names against the input ports",
            )
    for i, port in enumerate(spec.inputs):
        if port.file is not None and not port.description:
            yield ctx.at(
                f"input '{port.name}' reads a file but does not say what it is",
                "inputs",
                i,
                hint="add a description naming the system the file comes from",
            )


class QualitySloParams(Params):
    min_checks: int = Field(1, ge=0, description="Fewest declared quality checks.")


@rule(
    "quality-slo",
    "The product declares quality checks and a freshness SLO.",
    QualitySloParams,
)
def quality_slo(ctx: Context) -> Iterator[Violation]:
    params: QualitySloParams = ctx.params
    spec = ctx.product.spec
    if len(spec.quality) < params.min_checks:
        yield ctx.at(
            f"the product declares {len(spec.quality)} quality check(s); at least {params.min_checks} required",
            "quality",
            hint="add checks under quality: (row_count, unique, accepted_values, ...)",
        )
    if spec.slo is None:
        yield ctx.at(
            "the product declares no freshness SLO",
            "slo",
            hint="add slo: {freshness: {max_age: 1d}}",
        )


class RetentionParams(Params):
    max_period: Duration | None = Field(None, description="Longest retention allowed.")


@rule(
    "retention-policy",
    "The product declares a retention period and the date column it applies to.",
    RetentionParams,
)
def retention_policy(ctx: Context) -> Iterator[Violation]:
    params: RetentionParams = ctx.params
    retention = ctx.product.spec.retention
    if retention is None:
        yield ctx.at(
            "the product declares no retention period",
            "retention",
            hint="add retention: {period: 365d, column: <a date or timestamp column>}",
        )
    elif params.max_period is not None and retention.period > params.max_period:
        yield ctx.at(
            f"retention of {_days(retention.period)} exceeds the allowed {_days(params.max_period)}",
            "retention",
            "period",
            hint=f"keep data at most {_days(params.max_period)}, or ask for a waiver",
        )


def _days(value: timedelta) -> str:
    return f"{value.days}d" if value.days else f"{int(value.total_seconds())}s"


@rule(
    "audit-logging",
    "The platform records builds, grants and queries of the product in the audit trail.",
)
def audit_logging(ctx: Context) -> Iterator[Violation]:
    if not ctx.mesh.spec.settings.audit.enabled:
        yield ctx.in_mesh(
            "the audit trail is switched off",
            "settings",
            "audit",
            "enabled",
            hint="set settings.audit.enabled: true",
        )


# --------------------------------------------------------------------------- ownership


class OwnershipParams(Params):
    require: list[str] = Field(
        default_factory=lambda: ["technical", "business", "on_call"],
        description="Ownership roles that must be filled.",
    )

    @field_validator("require")
    @classmethod
    def _known_roles(cls, roles: list[str]) -> list[str]:
        known = {"technical", "business", "steward", "on_call", "escalation"}
        unknown = sorted(set(roles) - known)
        if unknown:
            raise ValueError(f"unknown ownership role(s) {unknown}; known: {sorted(known)}")
        return roles


@rule(
    "ownership",
    "The product names the owners, steward and on-call its domain requires.",
    OwnershipParams,
)
def ownership(ctx: Context) -> Iterator[Violation]:
    params: OwnershipParams = ctx.params
    owner = ctx.product.spec.owner
    for role in params.require:
        if not getattr(owner, role):
            yield ctx.at(
                f"the product names no {role.replace('_', '-')} owner",
                "owner",
                hint=f"add owner.{role}: <person or team>",
            )


class NamingParams(Params):
    product: str = Field(r"^[a-z][a-z0-9_]*$", description="Regex product names must match.")
    column: str = Field(r"^[a-z][a-z0-9_]*$", description="Regex column names must match.")

    @field_validator("product", "column")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(f"invalid regular expression {pattern!r}: {err}") from err
        return pattern


@rule("naming-convention", "Product and column names follow the mesh's conventions.", NamingParams)
def naming_convention(ctx: Context) -> Iterator[Violation]:
    params: NamingParams = ctx.params
    if not re.fullmatch(params.product, ctx.product.spec.name):
        yield ctx.at(
            f"product name '{ctx.product.spec.name}' does not match {params.product}",
            "name",
            hint="rename the product (and its folder)",
        )
    for i, column in enumerate(ctx.product.spec.schema_.columns):
        if not re.fullmatch(params.column, column.name):
            yield ctx.at(
                f"column name '{column.name}' does not match {params.column}",
                "schema",
                "columns",
                i,
                hint="rename it in the transform (AS ...) and in the schema",
            )


class MetadataParams(Params):
    min_description: int = Field(20, ge=0, description="Fewest characters in the description.")
    min_tags: int = Field(1, ge=0, description="Fewest tags.")
    column_descriptions: bool = Field(True, description="Every column needs a description.")


@rule("required-metadata", "The product and its columns are described and tagged.", MetadataParams)
def required_metadata(ctx: Context) -> Iterator[Violation]:
    params: MetadataParams = ctx.params
    spec = ctx.product.spec
    if len(spec.description.strip()) < params.min_description:
        yield ctx.at(
            f"the description has {len(spec.description.strip())} characters; at least {params.min_description} required",
            "description",
            hint="say what one row is, where the data comes from and who should use it",
        )
    if len(spec.tags) < params.min_tags:
        yield ctx.at(
            f"the product has {len(spec.tags)} tag(s); at least {params.min_tags} required",
            "tags",
            hint="add tags that people will search for",
        )
    if params.column_descriptions:
        for i, column in enumerate(spec.schema_.columns):
            if not column.description.strip():
                yield ctx.at(
                    f"column '{column.name}' has no description",
                    "schema",
                    "columns",
                    i,
                    hint="say what the value means and its unit",
                )


DEFAULT_TRANSITIONS: dict[str, list[str]] = {
    "draft": ["draft", "active", "retired"],
    "active": ["active", "deprecated"],
    "deprecated": ["deprecated", "active", "retired"],
    "retired": ["retired"],
}


class LifecycleParams(Params):
    allowed: dict[Lifecycle, list[Lifecycle]] = Field(
        default_factory=lambda: {
            Lifecycle(k): [Lifecycle(x) for x in v] for k, v in DEFAULT_TRANSITIONS.items()
        },
        description="For each status, the statuses it may move to.",
    )


@rule(
    "lifecycle-transitions",
    "A product moves only along allowed lifecycle transitions (e.g. active -> deprecated, not "
    "active -> draft).",
    LifecycleParams,
)
def lifecycle_transitions(ctx: Context) -> Iterator[Violation]:
    params: LifecycleParams = ctx.params
    before, now = ctx.previous_status, ctx.product.spec.status
    if before is None or before == now:
        return
    allowed = params.allowed.get(Lifecycle(before), [])
    if now not in allowed:
        yield ctx.at(
            f"status cannot move from {before} to {now}",
            "status",
            hint=f"from {before} a product may move to: {', '.join(allowed) or 'nothing'}",
        )


@rule(
    "source-ownership",
    "Each raw source (file or database table) is read as raw input by one domain only; two "
    "domains reading the same source is an overlap (unclear domain boundaries).",
)
def source_ownership(ctx: Context) -> Iterator[Violation]:
    for i, port in enumerate(ctx.product.spec.inputs):
        if port.product is not None:
            continue
        key = source_key(ctx.mesh, port.file, port.database)
        readers = ctx.raw_sources.get(key, [])
        others = sorted({p for p in readers if p.split(".")[0] != ctx.product.domain})
        if others:
            yield ctx.at(
                f"source {key} is also read as raw input by {', '.join(others)} (another domain): "
                "unclear domain boundaries",
                "inputs",
                i,
                hint="let one domain own the source and publish it as a product the others read",
            )


def source_key(mesh: Mesh, file: str | None, database: Any) -> str:
    """One key per source however its path is spelled: a file's resolved path (symlinks
    followed), relative to the mesh root when it lies inside it."""
    if file is not None:
        return _file_key(str(mesh.root), str(mesh.resolve_path(file)))
    target = database.table or "query"
    return f"{mask_url(database.url)}/{target}"


@functools.lru_cache(maxsize=8192)
def _file_key(root: str, file: str) -> str:
    path = Path(file).resolve()
    resolved_root = Path(root).resolve()
    return str(path.relative_to(resolved_root)) if path.is_relative_to(resolved_root) else str(path)


def raw_sources(mesh: Mesh) -> dict[str, list[str]]:
    """Every file/database source, with the products that read it as raw input."""
    index: dict[str, list[str]] = {}
    for product in mesh.products.values():
        for port in product.spec.inputs:
            if port.product is None:
                index.setdefault(source_key(mesh, port.file, port.database), []).append(product.id)
    return index
