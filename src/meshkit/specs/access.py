"""The access settings of the specs: who the principals are, how consumers are notified, and
how a product is shared.

`mesh.yaml`'s `access:` (admins, principals with clearance and attributes, webhooks, query
limits), a product's `access:` (auto-approval, the row filter) and a column's `masking:`. The
access package (`meshkit.access`) enforces them; these models only say what may be written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from meshkit.specs.models import Classification, Duration, Spec, no_duplicates


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
        no_duplicates([p.name for p in principals], "principal")
        return principals


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
