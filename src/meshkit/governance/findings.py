"""What a policy evaluation produces: one Finding per (product, policy), and a report of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from meshkit.specs.policies import Enforcement

RANK = {Enforcement.OPTIONAL: 0, Enforcement.RECOMMENDED: 1, Enforcement.REQUIRED: 2}


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    WAIVED = "waived"  # failed, but a valid waiver covers it
    ERROR = "error"  # the rule could not be evaluated: treated as failed (fail-closed)


@dataclass(frozen=True)
class Violation:
    """One reason a product breaks a rule, located where the fix goes."""

    message: str
    path: str = ""  # YAML path in the product spec, e.g. schema.columns[2].masking
    hint: str | None = None
    file: Path | None = None  # defaults to the product's dataproduct.yaml
    line: int | None = None
    column: int | None = None


@dataclass
class Finding:
    """The result of one policy on one product."""

    product: str
    policy: str  # the policy's name (a global or domain policy)
    rule: str  # the rule it runs: a built-in id, `rego:<file>` or `plugin:<name>`
    enforcement: Enforcement
    origin: str  # "global" or "domain:<name>"
    outcome: Outcome
    violations: list[Violation] = field(default_factory=list)
    description: str = ""
    waiver: dict[str, Any] | None = None  # the waiver that applied, if any

    @property
    def blocking(self) -> bool:
        failed = self.outcome in (Outcome.FAILED, Outcome.ERROR)
        return failed and self.enforcement == Enforcement.REQUIRED

    @property
    def message(self) -> str:
        if self.outcome == Outcome.PASSED:
            return "ok"
        if self.outcome == Outcome.WAIVED and self.waiver is not None:
            return f"waived until {self.waiver.get('expires')}: {self.waiver.get('reason')}"
        return "; ".join(v.message for v in self.violations)

    @property
    def hint(self) -> str | None:
        hints = [v.hint for v in self.violations if v.hint]
        return hints[0] if hints else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "policy": self.policy,
            "rule": self.rule,
            "enforcement": str(self.enforcement),
            "origin": self.origin,
            "outcome": str(self.outcome),
            "blocking": self.blocking,
            "description": self.description,
            "message": self.message,
            "hint": self.hint,
            "waiver": self.waiver,
            "violations": [
                {
                    "message": v.message,
                    "path": v.path or None,
                    "hint": v.hint,
                    "file": str(v.file) if v.file else None,
                    "line": v.line,
                    "column": v.column,
                }
                for v in self.violations
            ],
        }
