"""Acceptance of the built-in rules: each fails on a product that breaks it, located at the file,
YAML path and exact line to fix with a hint, and passes once the product is corrected. Rule
parameters are validated like any spec key (unknown rule, unknown parameter, wrong type).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from meshkit.errors import PolicyError, SpecError
from meshkit.governance import rules
from meshkit.governance.findings import Finding, Outcome
from meshkit.specs.policies import Enforcement

from conftest import product_spec

if TYPE_CHECKING:
    from governance.conftest import GovMesh

SETTINGS = {
    "storage": {"encryption": {"enabled": True, "method": "LUKS full-disk"}},
    "audit": {"enabled": True},
}
OWNER = {
    "technical": "ana@example.com",
    "business": "raj@example.com",
    "steward": "dora@example.com",
    "on_call": "sales-oncall@example.com",
}
COLUMNS = [
    {"name": "id", "type": "bigint", "description": "Order number from the ERP."},
    {"name": "order_date", "type": "date", "description": "Day the order was placed."},
    {"name": "amount", "type": "double", "description": "Order total in EUR, tax included."},
]


def good_product(name: str = "orders", **overrides: Any) -> dict[str, Any]:
    """A product every built-in rule passes (with SETTINGS in mesh.yaml)."""
    spec = product_spec(
        name,
        description="One row per order placed in the web shop, as the ERP records it.",
        tags=["sales", "fact"],
        owner=OWNER,
        inputs=[
            {
                "name": "raw",
                "description": "Nightly ERP extract of the order headers.",
                "file": "data/orders.parquet",
            }
        ],
        transform={"query": "select id, order_date, amount from raw"},
        schema={"columns": COLUMNS},
        quality=[{"type": "row_count", "min": 1}, {"type": "unique", "columns": ["id"]}],
        slo={"freshness": {"max_age": "1d"}},
        retention={"period": "365d", "column": "order_date"},
    )
    spec.update(overrides)
    return spec


@dataclass(frozen=True)
class Expected:
    """One violation: its YAML path, where it is (product spec or mesh.yaml) and its line."""

    path: str
    line: str  # regex of the line the violation must point at
    message: str  # a part of the message
    after: str | None = None  # search for `line` from the first line matching this
    in_mesh: bool = False


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    broken: dict[str, Any]
    fixed: dict[str, Any]
    expected: list[Expected]
    params: dict[str, Any] = field(default_factory=dict)
    broken_settings: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)

    @property
    def product(self) -> str:
        return f"sales.{self.broken.get('name', 'orders')}"

    @property
    def fixed_product(self) -> str:
        return f"sales.{self.fixed.get('name', 'orders')}"


PII_COLUMNS = [
    *COLUMNS,
    {"name": "phone", "type": "varchar", "description": "Phone number.", "pii": True},
    {
        "name": "salary",
        "type": "double",
        "description": "Salary of the clerk.",
        "classification": "confidential",
    },
]
PII_QUERY = "select id, order_date, amount, 'x' as phone, amount as salary from raw"

CASES = [
    Case(
        "encryption-at-rest",
        "encryption-at-rest",
        broken={},
        fixed={},
        broken_settings={**SETTINGS, "storage": {"encryption": {"enabled": False}}},
        expected=[
            Expected(
                "settings.storage.encryption.enabled",
                r"^\s+enabled: false$",
                "the local warehouse is not declared encrypted at rest",
                after=r"^\s+encryption:$",
                in_mesh=True,
            )
        ],
    ),
    Case(
        "encryption-at-rest-undeclared",
        "encryption-at-rest",
        broken={},
        fixed={},
        broken_settings={},  # no settings at all: located at the top of mesh.yaml
        expected=[
            Expected(
                "settings.storage.encryption.enabled",
                r"^apiVersion:",
                "not declared encrypted at rest",
                in_mesh=True,
            )
        ],
    ),
    Case(
        "pii-masking",
        "pii-masking",
        broken={"schema": {"columns": PII_COLUMNS}, "transform": {"query": PII_QUERY}},
        fixed={
            "schema": {
                "columns": [
                    *COLUMNS,
                    {**PII_COLUMNS[3], "masking": {"rule": "partial", "keep": 4}},
                    {**PII_COLUMNS[4], "masking": {"rule": "redact"}},
                ]
            },
            "transform": {"query": PII_QUERY},
        },
        expected=[
            Expected(
                "schema.columns[3]",
                r"- name: phone$",
                "column 'phone' is PII but has no masking rule",
            ),
            Expected(
                "schema.columns[4]",
                r"- name: salary$",
                "column 'salary' is classified confidential but has no masking rule",
            ),
        ],
    ),
    Case(
        "data-lineage",
        "data-lineage",
        broken={"inputs": [{"name": "raw", "file": "data/orders.parquet"}]},
        fixed={},
        expected=[
            Expected(
                "inputs[0]",
                r"- name: raw$",
                "input 'raw' reads a file but does not say what it is",
                after=r"^inputs:",
            )
        ],
    ),
    Case(
        "data-lineage-column-level",
        "data-lineage",
        params={"column_level": True},
        broken={"transform": {"python": "transform.py:build"}},
        fixed={},
        files={"domains/sales/products/orders/transform.py": "def build(raw):\n    return raw\n"},
        expected=[
            Expected(
                "transform.python",
                r"^\s+python: transform.py:build$",
                "a Python transform has no derivable column-level lineage",
            )
        ],
    ),
    Case(
        "quality-slo",
        "quality-slo",
        params={"min_checks": 2},
        broken={"quality": [{"type": "row_count", "min": 1}], "slo": None},
        fixed={},
        expected=[
            Expected(
                "quality",
                r"^quality:$",
                "the product declares 1 quality check(s); at least 2 required",
            ),
            Expected("slo", r"^slo: null$", "the product declares no freshness SLO"),
        ],
    ),
    Case(
        "retention-policy-missing",
        "retention-policy",
        broken={"retention": None},
        fixed={},
        expected=[
            Expected("retention", r"^retention: null$", "the product declares no retention period")
        ],
    ),
    Case(
        "retention-policy-too-long",
        "retention-policy",
        params={"max_period": "365d"},
        broken={"retention": {"period": "400d", "column": "order_date"}},
        fixed={},
        expected=[
            Expected(
                "retention.period",
                r"^\s+period: 400d$",
                "retention of 400d exceeds the allowed 365d",
                after=r"^retention:$",
            )
        ],
    ),
    Case(
        "audit-logging",
        "audit-logging",
        broken={},
        fixed={},
        broken_settings={**SETTINGS, "audit": {"enabled": False}},
        expected=[
            Expected(
                "settings.audit.enabled",
                r"^\s+enabled: false$",
                "the audit trail is switched off",
                after=r"^\s+audit:$",
                in_mesh=True,
            )
        ],
    ),
    Case(
        "ownership",
        "ownership",
        params={"require": ["technical", "business", "steward", "on_call"]},
        broken={"owner": {"technical": "ana@example.com", "business": "raj@example.com"}},
        fixed={},
        expected=[
            Expected("owner", r"^owner:$", "the product names no steward owner"),
            Expected("owner", r"^owner:$", "the product names no on-call owner"),
        ],
    ),
    Case(
        "naming-convention-column",
        "naming-convention",
        broken={
            "schema": {
                "columns": [*COLUMNS, {"name": "AmountEUR", "type": "double", "description": "x"}]
            },
            "transform": {"query": "select id, order_date, amount, amount as AmountEUR from raw"},
        },
        fixed={},
        expected=[
            Expected(
                "schema.columns[3]",
                r"- name: AmountEUR$",
                "column name 'AmountEUR' does not match ^[a-z][a-z0-9_]*$",
            )
        ],
    ),
    Case(
        "naming-convention-product",
        "naming-convention",
        params={"product": "^[a-z]+$"},
        broken={"name": "order_headers"},
        fixed={},
        expected=[
            Expected(
                "name", r"^name: order_headers$", "product name 'order_headers' does not match"
            )
        ],
    ),
    Case(
        "required-metadata",
        "required-metadata",
        params={"min_description": 30},
        broken={
            "description": "Orders.",
            "tags": [],
            "schema": {"columns": [{k: v for k, v in COLUMNS[0].items() if k != "description"}]},
            "transform": {"query": "select id from raw"},
            "retention": None,
        },
        fixed={},
        expected=[
            Expected(
                "description", r"^description:", "the description has 7 characters; at least 30"
            ),
            Expected("tags", r"^tags: \[\]$", "the product has 0 tag(s); at least 1 required"),
            Expected("schema.columns[0]", r"- name: id$", "column 'id' has no description"),
        ],
    ),
]


def test_the_cases_cover_every_builtin_rule() -> None:
    covered = {c.rule for c in CASES} | {"lifecycle-transitions", "source-ownership"}
    assert covered == set(rules.RULES)
    assert len(rules.RULES) == 11


def assert_located(finding: Finding, case: Case, gov_mesh: GovMesh) -> None:
    """Each violation names the file, the YAML path, the exact line, and how to fix it."""
    product_file = gov_mesh.product_file(case.product)
    got = sorted(finding.violations, key=lambda v: (v.line or 0, v.message))
    assert len(got) == len(case.expected), [v.message for v in got]
    for violation, expected in zip(
        got, sorted(case.expected, key=lambda e: _expected_line(e, gov_mesh, case)), strict=True
    ):
        file = gov_mesh.mesh_file if expected.in_mesh else product_file
        assert violation.file == file
        assert violation.path == expected.path
        assert violation.line == gov_mesh.line_of(file, expected.line, after=expected.after)
        assert violation.column is not None
        assert expected.message in violation.message
        assert violation.hint


def _expected_line(expected: Expected, gov_mesh: GovMesh, case: Case) -> tuple[int, str]:
    file = gov_mesh.mesh_file if expected.in_mesh else gov_mesh.product_file(case.product)
    return gov_mesh.line_of(file, expected.line, after=expected.after), expected.message


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_fails_located_then_passes_when_fixed(case: Case, gov_mesh: GovMesh) -> None:
    policy = {"name": case.rule, "rule": case.rule, "params": case.params}
    settings = SETTINGS if case.broken_settings is None else case.broken_settings
    gov_mesh.write(
        {"sales": {case.product.split(".")[1]: good_product(**case.broken)}},
        policies=[policy],
        settings=settings,
        files=case.files,
    )
    ws = gov_mesh.workspace()
    finding = gov_mesh.finding_of(ws.evaluate_policies(record=False), case.product, case.rule)
    assert finding.outcome == Outcome.FAILED
    assert finding.enforcement == Enforcement.REQUIRED
    assert finding.blocking
    assert finding.rule == case.rule
    assert finding.origin == "global"
    assert finding.description == rules.RULES[case.rule].description
    assert_located(finding, case, gov_mesh)

    # what the user sees: `file:line:column path: [policy] message (hint: ...)`
    with pytest.raises(PolicyError) as caught:
        ws.check_policies(record=False)
    assert caught.value.exit_code == 7
    assert caught.value.products == [case.product]
    text = str(caught.value)
    for v in finding.violations:
        assert (
            f"{v.file}:{v.line}:{v.column} {v.path}: [{case.rule}] {v.message} (hint: {v.hint})"
            in text
        )

    # the corrected product (and platform settings) pass
    shutil.rmtree(gov_mesh.root / "domains")
    gov_mesh.write(
        {"sales": {case.fixed_product.split(".")[1]: good_product(**case.fixed)}},
        policies=[policy],
        settings=SETTINGS,
        files=case.files,
    )
    ws = gov_mesh.workspace()
    fixed = gov_mesh.finding_of(ws.check_policies(record=False), case.fixed_product, case.rule)
    assert fixed.outcome == Outcome.PASSED
    assert fixed.violations == []
    assert not fixed.blocking


def test_the_good_product_passes_every_builtin_rule(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product()}},
        policies=[{"name": rule, "rule": rule} for rule in sorted(rules.RULES)],
        settings=SETTINGS,
    )
    findings = gov_mesh.workspace().check_policies(record=False)
    assert {f.policy: str(f.outcome) for f in findings} == dict.fromkeys(rules.RULES, "passed")


# ------------------------------------------------------------------- lifecycle transitions


def test_lifecycle_uses_the_status_the_catalog_last_saw(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product(status="active")}},
        policies=[{"name": "lifecycle", "rule": "lifecycle-transitions"}],
        settings=SETTINGS,
    )
    (result,) = gov_mesh.workspace().build()
    assert result.status == "published"

    file = gov_mesh.update_product("sales.orders", status="draft")
    ws = gov_mesh.workspace()
    finding = gov_mesh.finding_of(ws.evaluate_policies(record=False), "sales.orders", "lifecycle")
    assert finding.outcome == Outcome.FAILED
    (violation,) = finding.violations
    assert violation.message == "status cannot move from active to draft"
    assert violation.path == "status"
    assert violation.file == file
    assert violation.line == gov_mesh.line_of(file, r"^status: draft$")
    assert violation.hint == "from active a product may move to: active, deprecated"

    gov_mesh.update_product("sales.orders", status="deprecated")
    ws = gov_mesh.workspace()
    finding = gov_mesh.finding_of(ws.evaluate_policies(record=False), "sales.orders", "lifecycle")
    assert finding.outcome == Outcome.PASSED
    (result,) = ws.build()
    assert result.status == "published"
    assert ws.catalog.products.get("sales.orders").status == "deprecated"


def test_lifecycle_transitions_are_a_parameter(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product(status="active")}},
        policies=[
            {
                "name": "lifecycle",
                "rule": "lifecycle-transitions",
                "params": {"allowed": {"active": ["active", "retired"]}},
            }
        ],
        settings=SETTINGS,
    )
    gov_mesh.workspace().evaluate_policies()  # records status active in the catalog
    gov_mesh.update_product("sales.orders", status="deprecated")
    finding = gov_mesh.finding_of(
        gov_mesh.workspace().evaluate_policies(record=False), "sales.orders", "lifecycle"
    )
    assert finding.message == "status cannot move from active to deprecated"
    assert finding.hint == "from active a product may move to: active, retired"


def test_a_refused_transition_stays_refused_on_the_next_run(gov_mesh: GovMesh) -> None:
    """The catalog keeps the published status: validating, checking or a blocked build of the
    new spec must not record `draft`, or the second run would see draft -> draft."""
    gov_mesh.write(
        {"sales": {"orders": good_product(status="active")}},
        policies=[{"name": "lifecycle", "rule": "lifecycle-transitions"}],
        settings=SETTINGS,
    )
    (result,) = gov_mesh.workspace().build()
    assert result.status == "published"
    gov_mesh.update_product("sales.orders", status="draft")
    for _ in range(2):
        ws = gov_mesh.workspace()
        with pytest.raises(PolicyError):
            ws.validate()
        with pytest.raises(PolicyError):
            ws.check_policies()
        (result,) = ws.build()
        assert result.status == "blocked"
        assert ws.catalog.products.get("sales.orders").status == "active"


# ----------------------------------------------------------------------- source ownership


def test_source_ownership_two_domains_reading_one_file(gov_mesh: GovMesh) -> None:
    ledger_inputs = [
        {"name": "raw", "description": "The ERP order extract.", "file": "data/orders.parquet"}
    ]
    policies = [{"name": "one-owner", "rule": "source-ownership"}]
    gov_mesh.write(
        {
            "sales": {"orders": good_product(), "orders_copy": good_product("orders_copy")},
            "finance": {"ledger": good_product("ledger", inputs=ledger_inputs)},
        },
        policies=policies,
        settings=SETTINGS,
    )
    findings = gov_mesh.workspace().evaluate_policies(record=False)
    outcomes = {f.product: f.outcome for f in findings}
    assert outcomes == dict.fromkeys(
        ["finance.ledger", "sales.orders", "sales.orders_copy"], Outcome.FAILED
    )
    ledger = gov_mesh.finding_of(findings, "finance.ledger", "one-owner")
    (violation,) = ledger.violations
    file = gov_mesh.product_file("finance.ledger")
    assert violation.message == (
        "source data/orders.parquet is also read as raw input by sales.orders, "
        "sales.orders_copy (another domain): unclear domain boundaries"
    )
    assert (violation.file, violation.path) == (file, "inputs[0]")
    assert violation.line == gov_mesh.line_of(file, r"- name: raw$", after=r"^inputs:$")
    assert violation.hint is not None
    assert "publish it as a product" in violation.hint
    (orders_violation,) = gov_mesh.finding_of(findings, "sales.orders", "one-owner").violations
    assert "also read as raw input by finance.ledger (another domain)" in orders_violation.message

    # fixed: finance reads the product sales owns; two readers in one domain are fine
    gov_mesh.update_product(
        "finance.ledger",
        inputs=[{"name": "raw", "product": "sales.orders"}],
    )
    findings = gov_mesh.workspace().check_policies(record=False)
    assert {f.product: f.outcome for f in findings} == dict.fromkeys(
        ["finance.ledger", "sales.orders", "sales.orders_copy"], Outcome.PASSED
    )


def test_source_ownership_sees_one_file_through_two_spellings(
    gov_mesh: GovMesh, tmp_path: Path
) -> None:
    """data/ is a mounted volume (a symlink out of the mesh, like the example mesh's data/):
    `data/orders.parquet` and the file's real path are the same source."""
    shared = tmp_path / "volume"
    shared.mkdir()
    gov_mesh.root.mkdir()
    (gov_mesh.root / "data").symlink_to(shared, target_is_directory=True)
    real = shared / "orders.parquet"
    inputs = [{"name": "raw", "description": "The ERP order extract.", "file": str(real)}]
    gov_mesh.write(
        {
            "sales": {"orders": good_product()},  # reads data/orders.parquet
            "finance": {"ledger": good_product("ledger", inputs=inputs)},
        },
        policies=[{"name": "one-owner", "rule": "source-ownership"}],
        settings=SETTINGS,
    )
    assert real.is_file()
    findings = gov_mesh.workspace().evaluate_policies(record=False)
    assert {f.product: f.outcome for f in findings} == {
        "finance.ledger": Outcome.FAILED,
        "sales.orders": Outcome.FAILED,
    }
    (violation,) = gov_mesh.finding_of(findings, "sales.orders", "one-owner").violations
    assert violation.message.startswith(f"source {real.resolve()} is also read as raw input by")


# ------------------------------------------------------------------- parameter validation


@pytest.mark.parametrize(
    ("policy", "path", "line", "message", "hint"),
    [
        (
            {"name": "masking", "rule": "pii-maskng"},
            "rule",
            r"^\s+rule: pii-maskng$",
            "unknown rule 'pii-maskng'",
            "did you mean 'pii-masking'?",
        ),
        (
            {"name": "mystery", "rule": "zzz"},
            "rule",
            r"^\s+rule: zzz$",
            "unknown rule 'zzz'",
            "built-in rules: audit-logging, data-lineage, encryption-at-rest",
        ),
        (
            {"name": "quality", "rule": "quality-slo", "params": {"min_check": 2}},
            "params.min_check",
            r"^\s+min_check: 2$",
            "rule 'quality-slo' has no parameter 'min_check'",
            "did you mean 'min_checks'?",
        ),
        (
            {"name": "quality", "rule": "quality-slo", "params": {"min_checks": "three"}},
            "params.min_checks",
            r"^\s+min_checks: three$",
            "parameter min_checks: Input should be a valid integer",
            None,
        ),
        (
            {"name": "retention", "rule": "retention-policy", "params": {"max_period": "forever"}},
            "params.max_period",
            r"^\s+max_period: forever$",
            "parameter max_period: 'forever' is not a duration",
            None,
        ),
        (
            {"name": "owners", "rule": "ownership", "params": {"require": ["technical", "cfo"]}},
            "params.require",
            r"^\s+require:$",
            "unknown ownership role(s) ['cfo']",
            None,
        ),
        (
            {"name": "audit", "rule": "audit-logging", "params": {"strict": True}},
            "params.strict",
            r"^\s+strict: true$",
            "rule 'audit-logging' has no parameter 'strict'",
            "its parameters: none",
        ),
    ],
    ids=[
        "unknown-rule",
        "unknown-rule-no-guess",
        "unknown-param",
        "bad-param-type",
        "bad-duration",
        "bad-param-value",
        "rule-without-params",
    ],
)
def test_policy_declarations_are_validated_in_mesh_yaml(
    gov_mesh: GovMesh,
    policy: dict[str, Any],
    path: str,
    line: str,
    message: str,
    hint: str | None,
) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product()}},
        policies=[{"name": "first", "rule": "ownership"}, policy],  # the bad one is [1]
        settings=SETTINGS,
    )
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    assert problem.file == gov_mesh.mesh_file
    assert problem.path == f"governance.policies[1].{path}"
    assert problem.line == gov_mesh.line_of(
        gov_mesh.mesh_file, line, after=rf"name: {policy['name']}$"
    )
    assert message in problem.message
    if hint is not None:
        assert problem.hint is not None
        assert hint in problem.hint
    assert caught.value.exit_code == 2


def test_domain_policy_declarations_are_validated_in_domain_yaml(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product()}},
        domain_policies={
            "sales": [{"name": "checks", "rule": "quality-slo", "params": {"min_cheks": 3}}]
        },
        settings=SETTINGS,
    )
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    domain_file = gov_mesh.domain_file("sales")
    assert problem.file == domain_file
    assert problem.path == "policies[0].params.min_cheks"
    assert problem.line == gov_mesh.line_of(domain_file, r"^\s+min_cheks: 3$")
    assert problem.hint == "did you mean 'min_checks'?"


def test_every_problem_is_reported_at_once(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": good_product()}},
        policies=[
            {"name": "a", "rule": "ownrship"},
            {"name": "b", "rule": "naming-convention", "params": {"column": "[unclosed"}},
        ],
        settings=SETTINGS,
    )
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    problems = caught.value.problems
    assert [p.path for p in problems] == [
        "governance.policies[0].rule",
        "governance.policies[1].params.column",
    ]
    assert problems[0].hint == "did you mean 'ownership'?"
    assert "invalid regular expression '[unclosed'" in problems[1].message
