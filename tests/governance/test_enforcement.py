"""Acceptance of policy enforcement: PII that flows through SQL, what `required`, `recommended`
and `optional` do to validate and build, domain tightening, Rego and plugin rules in a build,
waivers on a frozen clock, the CLI reports and the catalog, and the example mesh.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import pytest
import xmlschema

from meshkit import governance
from meshkit.errors import PolicyError, SpecError
from meshkit.governance.findings import Outcome
from meshkit.governance.reports import JSON_SCHEMA
from meshkit.specs.policies import Enforcement
from meshkit.tables.local import local_path
from meshkit.workspace import Workspace

from conftest import copy_mesh, product_spec

if TYPE_CHECKING:
    from governance.conftest import GovMesh

Cli = Callable[..., tuple[int, str, str]]
FIXTURES = Path(__file__).parent / "fixtures"
SCHEMAS = Path(__file__).parent / "schemas"

OWNER = {
    "technical": "ana@example.com",
    "business": "raj@example.com",
    "on_call": "oncall@example.com",
}


def column(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": f"The {name}.", **extra}


def orders(name: str = "orders", **overrides: Any) -> dict[str, Any]:
    """A small product over data/orders.parquet (40 rows: id, customer_key, amount, order_date)."""
    spec = product_spec(
        name,
        owner=OWNER,
        transform={"query": "select id, amount from raw"},
        schema={"columns": [column("id", "bigint"), column("amount", "double")]},
    )
    spec.update(overrides)
    return spec


def ledger(name: str = "ledger", *, masked: bool = False, **overrides: Any) -> dict[str, Any]:
    """A product over data/ledger.parquet (12 rows) with a PII column `account`."""
    account = column("account", "varchar", pii=True)
    if masked:
        account["masking"] = {"rule": "hash"}
    spec = product_spec(
        name,
        owner=OWNER,
        inputs=[{"name": "raw", "file": "data/ledger.parquet"}],
        transform={"query": "select id, account, amount from raw"},
        schema={"columns": [column("id", "bigint"), account, column("amount", "double")]},
    )
    spec.update(overrides)
    return spec


def reader(name: str, upstream: str, query: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    """A product reading another product through the input port `src`."""
    return product_spec(
        name,
        owner=OWNER,
        inputs=[{"name": "src", "product": upstream}],
        transform={"query": query},
        schema={"columns": columns},
    )


def statuses(results: list[Any]) -> dict[str, str]:
    """product -> build status, from BuildResults or from `meshkit build --json` results."""
    return {
        (r["product"] if isinstance(r, dict) else r.product_id): (
            r["status"] if isinstance(r, dict) else r.status
        )
        for r in results
    }


# ===================================================================== PII through lineage

CUSTOMERS = product_spec(
    "customers",
    owner=OWNER,
    inputs=[{"name": "raw", "file": "data/customers.parquet"}],
    transform={"query": "select customer_key, customer_name, phone, region from raw"},
    schema={
        "columns": [
            column("customer_key", "bigint"),
            column("customer_name", "varchar", pii=True, masking={"rule": "hash"}),
            column("phone", "varchar", pii=True, masking={"rule": "partial", "keep": 4}),
            column("region", "varchar"),
        ]
    },
)
NAME = "customer.customers.customer_name"
PHONE = "customer.customers.phone"
KEY = "customer.customers.customer_key"
REGION = "customer.customers.region"
DECLASSIFIED = {"to": "internal", "reason": "a count of distinct customers, not a name"}

# product -> (SQL, declared columns, {column: upstream columns it inherits PII from})
DOWNSTREAM: dict[str, tuple[str, list[dict[str, Any]], dict[str, list[str]]]] = {
    "copied": (
        "select customer_key, customer_name from src",
        [column("customer_key", "bigint"), column("customer_name", "varchar")],
        {"customer_name": [NAME]},
    ),
    "renamed": (
        "select customer_key, customer_name as buyer from src",
        [column("customer_key", "bigint"), column("buyer", "varchar")],
        {"buyer": [NAME]},
    ),
    "concatenated": (
        "select customer_key, customer_name || ' <' || phone || '>' as contact_line from src",
        [column("customer_key", "bigint"), column("contact_line", "varchar")],
        {"contact_line": [NAME, PHONE]},
    ),
    "derived": (
        "select customer_key, upper(customer_name) as name_upper, md5(phone) as phone_md5 from src",
        [
            column("customer_key", "bigint"),
            column("name_upper", "varchar"),
            column("phone_md5", "varchar"),
        ],
        {"name_upper": [NAME], "phone_md5": [PHONE]},
    ),
    "buyers_raw": (  # an aggregate still inherits: it passes only once declassified
        "select region, count(distinct customer_name) as buyers from src group by region",
        [column("region", "varchar"), column("buyers", "bigint")],
        {"buyers": [NAME]},
    ),
    "buyers": (
        "select region, count(distinct customer_name) as buyers from src group by region",
        [column("region", "varchar"), column("buyers", "bigint", declassify=DECLASSIFIED)],
        {},
    ),
    "filtered": (
        "select customer_key, region from src "
        "where customer_name is not null and phone like '+44%'",
        [column("customer_key", "bigint"), column("region", "varchar")],
        {},
    ),
}


def write_pii_mesh(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {
            "customer": {"customers": CUSTOMERS},
            "marketing": {
                name: reader(name, "customer.customers", sql, columns)
                for name, (sql, columns, _) in DOWNSTREAM.items()
            },
        },
        policies=[{"name": "pii-masking", "rule": "pii-masking"}],
    )


@pytest.mark.parametrize("name", list(DOWNSTREAM))
def test_pii_is_inherited_through_sql(gov_mesh: GovMesh, name: str) -> None:
    write_pii_mesh(gov_mesh)
    ws = gov_mesh.workspace()
    pid = f"marketing.{name}"
    finding = gov_mesh.finding_of(ws.evaluate_policies([pid], record=False), pid, "pii-masking")
    _, columns, inherited = DOWNSTREAM[name]
    if not inherited:
        assert finding.outcome == Outcome.PASSED
        assert finding.violations == []
        return
    assert finding.outcome == Outcome.FAILED
    assert finding.blocking
    file = gov_mesh.product_file(pid)
    names = [c["name"] for c in columns]
    expected = [
        (
            f"column '{col}' is PII, inherited from {', '.join(sources)} but has no masking rule",
            f"schema.columns[{names.index(col)}]",
            gov_mesh.line_of(file, rf"- name: {col}$"),
        )
        for col, sources in inherited.items()
    ]
    assert [(v.message, v.path, v.line) for v in finding.violations] == expected
    assert all(v.file == file and v.hint for v in finding.violations)


def test_pii_lineage_facts(gov_mesh: GovMesh) -> None:
    """What the rules (and the catalog) see: effective classification per column."""
    write_pii_mesh(gov_mesh)
    mesh = gov_mesh.workspace().mesh
    rows = {
        name: governance.column_lineage_rows(mesh, mesh.products[f"marketing.{name}"])
        for name in ("copied", "concatenated", "buyers", "filtered")
    }
    # every column has its sources, classified or not: customer_key only carries nothing
    assert rows["copied"] == [
        ("customer_key", KEY, "internal", False),
        ("customer_name", NAME, "internal", True),
    ]
    assert rows["concatenated"] == [
        ("customer_key", KEY, "internal", False),
        ("contact_line", NAME, "internal", True),
        ("contact_line", PHONE, "internal", True),
    ]
    # declassified: still shows where it came from, but is no longer PII
    assert rows["buyers"] == [
        ("region", REGION, "internal", False),
        ("buyers", NAME, "internal", False),
    ]
    # WHERE columns decide which rows, not what a value is: nothing inherited
    assert rows["filtered"] == [
        ("customer_key", KEY, "internal", False),
        ("region", REGION, "internal", False),
    ]


def test_pii_build_blocks_the_leaks_and_publishes_the_rest(gov_mesh: GovMesh) -> None:
    write_pii_mesh(gov_mesh)
    ws = gov_mesh.workspace()
    results = ws.build()
    leaking = {f"marketing.{n}" for n, (_, _, inherited) in DOWNSTREAM.items() if inherited}
    assert statuses(results) == {
        "customer.customers": "published",
        **{f"marketing.{n}": "published" for n in DOWNSTREAM},
        **dict.fromkeys(leaking, "blocked"),
    }
    for result in results:
        if result.product_id in leaking:
            assert isinstance(result.error, PolicyError)
            assert "inherited from customer.customers." in str(result.error)
            assert ws.snapshot(result.product_id) is None  # no table was created
    buyers = ws.query("select * from marketing.buyers order by region").to_pylist()
    assert sum(r["buyers"] for r in buyers) == 25


def test_column_lineage_is_stored_in_the_catalog_after_a_build(gov_mesh: GovMesh) -> None:
    write_pii_mesh(gov_mesh)
    ws = gov_mesh.workspace()
    ws.build(["customer.customers", "marketing.buyers", "marketing.filtered"])
    stored = {
        (r.column, r.source, r.classification, r.pii)
        for r in ws.catalog.lineage.columns("marketing.buyers")
    }
    # every column has its lineage, classified or not (region carries nothing to inherit)
    assert stored == {
        ("region", REGION, "internal", False),
        ("buyers", NAME, "internal", False),
    }
    customers = {
        (r.column, r.source, r.pii) for r in ws.catalog.lineage.columns("customer.customers")
    }
    assert customers == {  # a file input's columns are named by its port
        ("customer_key", "raw.customer_key", False),
        ("customer_name", "raw.customer_name", True),
        ("phone", "raw.phone", True),
        ("region", "raw.region", False),
    }


# ==================================================================== enforcement levels


def write_enforcement_mesh(gov_mesh: GovMesh, *, ledger_masked: bool = False) -> None:
    """sales.orders -> sales.daily (independent of finance); finance.ledger -> finance.totals."""
    gov_mesh.write(
        {
            "sales": {
                "orders": orders(),
                "daily": reader(
                    "daily",
                    "sales.orders",
                    "select count(*) as orders from src",
                    [column("orders", "bigint")],
                ),
            },
            "finance": {
                "ledger": ledger(masked=ledger_masked),
                "totals": reader(
                    "totals",
                    "finance.ledger",
                    "select sum(amount) as total from src",
                    [column("total", "double")],
                ),
            },
        },
        policies=[{"name": "pii-masking", "rule": "pii-masking", "enforcement": "required"}],
    )


def test_required_failure_blocks_build_and_skips_downstream(gov_mesh: GovMesh, cli: Cli) -> None:
    write_enforcement_mesh(gov_mesh)
    code, out, _ = cli("build", "--mesh", gov_mesh.root, "--json")
    assert code == 7
    report = json.loads(out)
    assert report["ok"] is False
    assert statuses(report["results"]) == {
        "sales.orders": "published",
        "sales.daily": "published",
        "finance.ledger": "blocked",
        "finance.totals": "skipped",
    }
    blocked = next(r for r in report["results"] if r["product"] == "finance.ledger")
    assert blocked["error"]["type"] == "PolicyError"
    ws = gov_mesh.workspace()
    assert ws.snapshot("finance.ledger") is None
    assert not local_path(ws.table_of("finance.ledger")).exists()
    assert ws.snapshot("finance.totals") is None
    assert ws.snapshot("sales.daily") is not None

    # once fixed it publishes; broken again, the published table is left as it was
    gov_mesh.update_product("finance.ledger", **ledger(masked=True))
    code, out, _ = cli("build", "--mesh", gov_mesh.root, "--json")
    assert code == 0, out
    ws = gov_mesh.workspace()
    before = ws.snapshot("finance.ledger")
    assert before is not None
    versions = [v.delta_version for v in ws.catalog.versions.of("finance.ledger")]
    gov_mesh.update_product(
        "finance.ledger",
        **ledger(transform={"query": "select id, account, -amount as amount from raw"}),
    )
    code, out, err = cli("build", "finance.ledger", "finance.totals", "--mesh", gov_mesh.root)
    assert code == 7
    file = gov_mesh.product_file("finance.ledger")
    line = gov_mesh.line_of(file, r"- name: account$")
    assert f"{file}:{line}:" in out + err
    assert (
        "schema.columns[1]: [pii-masking] column 'account' is PII but has no masking rule"
        in out + err
    )
    assert "hint: add masking: {rule: hash}" in out + err
    ws = gov_mesh.workspace()
    after = ws.snapshot("finance.ledger")
    assert after is not None
    assert after.version == before.version
    assert [v.delta_version for v in ws.catalog.versions.of("finance.ledger")] == versions
    assert ws.query("select sum(amount) as s from finance.ledger").to_pylist()[0]["s"] > 0


def test_validate_exits_7_with_the_located_problem(gov_mesh: GovMesh, cli: Cli) -> None:
    write_enforcement_mesh(gov_mesh)
    code, out, err = cli("validate", "--mesh", gov_mesh.root)
    assert code == 7
    file = gov_mesh.product_file("finance.ledger")
    line = gov_mesh.line_of(file, r"- name: account$")
    error_line = err.splitlines()[0]
    assert error_line.startswith("error: required policy fails")
    assert error_line.endswith("for finance.ledger")
    assert (
        f"{file}:{line}:5 schema.columns[1]: [pii-masking] column 'account' is PII but has no "
        "masking rule" in err
    )
    assert "hint: add masking: {rule: hash}" in err
    assert "ok:" not in out
    with pytest.raises(PolicyError) as caught:
        gov_mesh.workspace().validate()
    assert caught.value.products == ["finance.ledger"]

    write_enforcement_mesh(gov_mesh, ledger_masked=True)
    code, out, _ = cli("validate", "--mesh", gov_mesh.root)
    assert code == 0
    assert "ok: 2 domains, 4 products are valid" in out


@pytest.mark.parametrize("enforcement", ["recommended", "optional"])
def test_non_required_failures_build_and_are_recorded(
    gov_mesh: GovMesh, cli: Cli, enforcement: str
) -> None:
    gov_mesh.write(
        {"finance": {"ledger": ledger(), "payments": ledger("payments", masked=True)}},
        policies=[{"name": "pii-masking", "rule": "pii-masking", "enforcement": enforcement}],
    )
    code, out, _ = cli("build", "--mesh", gov_mesh.root, "--json")
    assert code == 0
    assert statuses(json.loads(out)["results"]) == {
        "finance.ledger": "published",
        "finance.payments": "published",
    }
    ws = gov_mesh.workspace()
    (stored,) = ws.catalog.policies.latest("finance.ledger")
    assert (stored.policy, stored.enforcement, stored.outcome) == (
        "pii-masking",
        enforcement,
        "failed",
    )
    assert "column 'account' is PII but has no masking rule" in stored.message
    (passed,) = ws.catalog.policies.latest("finance.payments")
    assert passed.outcome == "passed"

    code, out, _ = cli("policy", "check", "--mesh", gov_mesh.root, "-f", "json")
    assert code == 0  # reported, not blocking
    report = json.loads(out)
    assert report["summary"]["blocking"] == 0
    reported = {(f["product"], f["enforcement"], f["outcome"]) for f in report["findings"]}
    assert reported == {
        ("finance.ledger", enforcement, "failed"),
        ("finance.payments", enforcement, "passed"),
    }


def test_a_rule_that_cannot_be_evaluated_fails_closed(gov_mesh: GovMesh) -> None:
    """COLUMNS(...) is valid DuckDB, but its lineage is only known at run time."""
    gov_mesh.write(
        {
            "customer": {"customers": CUSTOMERS},
            "marketing": {
                "opaque": reader(
                    "opaque",
                    "customer.customers",
                    "select columns('customer_.*') from src",
                    [column("customer_key", "bigint"), column("customer_name", "varchar")],
                )
            },
        },
        policies=[{"name": "pii-masking", "rule": "pii-masking"}],
    )
    ws = gov_mesh.workspace()
    finding = gov_mesh.finding_of(
        ws.evaluate_policies(record=False), "marketing.opaque", "pii-masking"
    )
    assert finding.outcome == Outcome.ERROR
    assert finding.blocking
    (violation,) = finding.violations
    assert violation.message.startswith("could not be evaluated, so it counts as failed: ")
    assert "COLUMNS(...)" in violation.message
    assert violation.file == gov_mesh.product_file("marketing.opaque")
    assert statuses(ws.build()) == {
        "customer.customers": "published",
        "marketing.opaque": "blocked",
    }


def write_warning_mesh(gov_mesh: GovMesh) -> None:
    """ledger breaks a recommended policy (pii-masking) and an optional one (ownership)."""
    gov_mesh.write(
        {"finance": {"ledger": ledger(owner={"technical": "a@x.com", "business": "b@x.com"})}},
        policies=[
            {"name": "pii-masking", "rule": "pii-masking", "enforcement": "recommended"},
            {"name": "ownership", "rule": "ownership", "enforcement": "optional"},
        ],
    )


WARNING = (
    "warning [pii-masking, recommended] finance.ledger: column 'account' is PII but has no "
    "masking rule"
)


def test_validate_prints_recommended_failures_as_warnings(gov_mesh: GovMesh, cli: Cli) -> None:
    write_warning_mesh(gov_mesh)
    code, out, err = cli("validate", "--mesh", gov_mesh.root)
    assert code == 0
    assert WARNING in err
    assert "ok: 1 domains, 1 products are valid" in out


def test_optional_failures_are_only_reported(gov_mesh: GovMesh, cli: Cli) -> None:
    write_warning_mesh(gov_mesh)
    code, out, err = cli("validate", "--mesh", gov_mesh.root)
    assert code == 0
    assert "ownership" not in out + err  # optional: shown by `policy check` and `policy report`
    code, out, _ = cli("policy", "check", "--mesh", gov_mesh.root, "-f", "json")
    assert code == 0
    assert {(f["policy"], f["outcome"]) for f in json.loads(out)["findings"]} == {
        ("pii-masking", "failed"),
        ("ownership", "failed"),
    }


def test_build_prints_recommended_failures_as_warnings(gov_mesh: GovMesh, cli: Cli) -> None:
    write_warning_mesh(gov_mesh)
    code, _, err = cli("build", "--mesh", gov_mesh.root)
    assert code == 0
    assert WARNING in err


# ==================================================================== domain tightening

BAD_COLUMN_QUERY = "select id, amount as AmountEUR from raw"
BAD_COLUMNS = {"columns": [column("id", "bigint"), column("AmountEUR", "double")]}


def test_domain_may_raise_recommended_to_required(gov_mesh: GovMesh) -> None:
    bad = {"transform": {"query": BAD_COLUMN_QUERY}, "schema": BAD_COLUMNS}
    gov_mesh.write(
        {"sales": {"orders": orders(**bad)}, "finance": {"orders": orders(**bad)}},
        policies=[{"name": "naming", "rule": "naming-convention", "enforcement": "recommended"}],
        domain_policies={
            "sales": [{"name": "naming", "rule": "naming-convention", "enforcement": "required"}]
        },
    )
    ws = gov_mesh.workspace()
    findings = ws.evaluate_policies(record=False)
    sales = gov_mesh.finding_of(findings, "sales.orders", "naming")
    finance = gov_mesh.finding_of(findings, "finance.orders", "naming")
    assert (sales.enforcement, sales.origin, sales.blocking) == (
        Enforcement.REQUIRED,
        "global+domain:sales",
        True,
    )
    assert (finance.enforcement, finance.origin, finance.blocking) == (
        Enforcement.RECOMMENDED,
        "global",
        False,
    )
    assert statuses(ws.build()) == {"sales.orders": "blocked", "finance.orders": "published"}


REDECLARED = (
    "a domain may only raise a global policy's enforcement",
    "for stricter parameters or a narrower scope, declare a policy with its own name",
)


@pytest.mark.parametrize(
    ("domain_policy", "path", "line", "message", "hint"),
    [
        (
            {"name": "pii-masking", "rule": "pii-masking", "enforcement": "recommended"},
            "policies[0].enforcement",
            r"^\s+enforcement: recommended$",
            "domain 'sales' cannot loosen global policy 'pii-masking' from required to recommended",
            "keep enforcement: required (or stricter)",
        ),
        (
            {"name": "metadata", "rule": "required-metadata", "params": {"min_description": 10}},
            "policies[0].params",
            r"^\s+params:$",
            f"domain 'sales' redeclares global policy 'metadata' with 'params'; {REDECLARED[0]}",
            REDECLARED[1],
        ),
        (
            # an open parameter is no safer: `classifications: []` would unmask every
            # confidential column the global policy protects
            {"name": "pii-masking", "rule": "pii-masking", "params": {"classifications": []}},
            "policies[0].params",
            r"^\s+params:$",
            f"domain 'sales' redeclares global policy 'pii-masking' with 'params'; {REDECLARED[0]}",
            REDECLARED[1],
        ),
        (
            {"name": "pii-masking", "rule": "pii-masking", "scope": {"tags": ["gdpr"]}},
            "policies[0].scope",
            r"^\s+scope:$",
            f"domain 'sales' redeclares global policy 'pii-masking' with 'scope'; {REDECLARED[0]}",
            REDECLARED[1],
        ),
        (
            {"name": "pii-masking", "rule": "ownership"},
            "policies[0].rule",
            r"^\s+rule: ownership$",
            "policy 'pii-masking' is a global policy running pii-masking; a domain can make it "
            "stricter but not swap its rule",
            "give the domain policy its own name",
        ),
    ],
    ids=["lower-enforcement", "change-param", "fill-open-param", "narrow-scope", "swap-rule"],
)
def test_domain_cannot_loosen_a_global_policy(
    gov_mesh: GovMesh,
    cli: Cli,
    domain_policy: dict[str, Any],
    path: str,
    line: str,
    message: str,
    hint: str,
) -> None:
    gov_mesh.write(
        {"sales": {"orders": orders()}},
        policies=[
            {"name": "pii-masking", "rule": "pii-masking", "enforcement": "required"},
            {
                "name": "metadata",
                "rule": "required-metadata",
                "enforcement": "recommended",
                "params": {"min_description": 40},
            },
        ],
        domain_policies={"sales": [domain_policy]},
    )
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    domain_file = gov_mesh.domain_file("sales")
    assert problem.file == domain_file
    assert problem.path == path
    assert problem.line == gov_mesh.line_of(domain_file, line, after=r"^policies:$")
    assert problem.message == message
    assert problem.hint is not None
    assert hint in problem.hint

    code, _, err = cli("validate", "--mesh", gov_mesh.root)
    assert code == 2
    assert f"{domain_file}:{problem.line}:{problem.column} {path}: {message}" in err


def test_domain_redeclaring_without_enforcement_changes_nothing(gov_mesh: GovMesh) -> None:
    gov_mesh.write(
        {"sales": {"orders": orders(transform={"query": BAD_COLUMN_QUERY}, schema=BAD_COLUMNS)}},
        policies=[{"name": "naming", "rule": "naming-convention", "enforcement": "recommended"}],
        domain_policies={"sales": [{"name": "naming", "rule": "naming-convention"}]},
    )
    (finding,) = gov_mesh.workspace().evaluate_policies(record=False)
    assert (finding.enforcement, finding.origin, finding.outcome) == (
        Enforcement.RECOMMENDED,
        "global",
        Outcome.FAILED,
    )


def test_domain_asks_for_stricter_params_with_a_policy_of_its_own(gov_mesh: GovMesh) -> None:
    two_checks = {
        "quality": [{"type": "row_count", "min": 1}, {"type": "unique", "columns": ["id"]}],
        "slo": {"freshness": {"max_age": "1d"}},
    }
    gov_mesh.write(
        {"sales": {"orders": orders(**two_checks)}, "finance": {"orders": orders(**two_checks)}},
        policies=[{"name": "quality", "rule": "quality-slo"}],  # min_checks: 1
        domain_policies={
            "sales": [{"name": "sales-quality", "rule": "quality-slo", "params": {"min_checks": 3}}]
        },
    )
    ws = gov_mesh.workspace()
    findings = ws.evaluate_policies(record=False)
    assert {(f.product, f.policy, f.origin, f.outcome) for f in findings} == {
        ("sales.orders", "quality", "global", Outcome.PASSED),  # the global one still applies
        ("sales.orders", "sales-quality", "domain:sales", Outcome.FAILED),
        ("finance.orders", "quality", "global", Outcome.PASSED),
    }
    stricter = gov_mesh.finding_of(findings, "sales.orders", "sales-quality")
    assert stricter.message == "the product declares 2 quality check(s); at least 3 required"
    assert stricter.blocking
    assert statuses(ws.build()) == {"sales.orders": "blocked", "finance.orders": "published"}


# ================================================================ Rego and plugin rules


STEWARD = {**OWNER, "steward": "dora@example.com"}


def write_custom_rule_mesh(gov_mesh: GovMesh, policy: dict[str, Any]) -> None:
    gov_mesh.write(
        {
            "finance": {
                "ledger": ledger(masked=True),  # no steward
                "payments": ledger("payments", masked=True, owner=STEWARD),
            },
            "sales": {"orders": orders()},  # no steward, but not a finance product
        },
        domain_policies={"finance": [policy]},
    )


def assert_blocks_ledger_only(gov_mesh: GovMesh, rule: str, message: str) -> None:
    ws = gov_mesh.workspace()
    results = ws.build()
    assert statuses(results) == {
        "finance.ledger": "blocked",
        "finance.payments": "published",
        "sales.orders": "published",
    }
    (stored,) = ws.catalog.policies.latest("finance.ledger")
    assert (stored.rule, stored.origin, stored.outcome) == (rule, "domain:finance", "failed")
    (violation,) = stored.violations
    file = gov_mesh.product_file("finance.ledger")
    assert violation["message"] == message
    assert violation["path"] == "owner.steward"
    assert violation["file"] == str(file)
    assert violation["line"] == gov_mesh.line_of(file, r"^owner:$")  # steward is missing: owner
    assert violation["hint"] == "set owner.steward to the person accountable for this data"
    assert ws.catalog.policies.latest("finance.payments")[0].outcome == "passed"
    assert ws.catalog.policies.latest("sales.orders") == []  # a finance policy only


def test_rego_rule_blocks_one_product_and_passes_another(gov_mesh: GovMesh) -> None:
    rego = gov_mesh.root / "domains" / "finance" / "policies" / "steward.rego"
    write_custom_rule_mesh(gov_mesh, {"name": "steward", "rego": "policies/steward.rego"})
    rego.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "rego" / "finance.rego", rego)
    assert_blocks_ledger_only(
        gov_mesh,
        "rego:policies/steward.rego",
        "finance.ledger: finance products must name a data steward",
    )


def test_missing_rego_file_is_a_located_spec_error(gov_mesh: GovMesh) -> None:
    write_custom_rule_mesh(gov_mesh, {"name": "steward", "rego": "policies/nope.rego"})
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    assert (problem.file, problem.path) == (gov_mesh.domain_file("finance"), "policies[0].rego")
    assert problem.message == "Rego file 'policies/nope.rego' does not exist"


def test_plugin_rule_blocks_one_product_and_passes_another(
    gov_mesh: GovMesh, rule_plugins: Path
) -> None:
    write_custom_rule_mesh(
        gov_mesh,
        {"name": "steward", "rule": "plugin:require-steward", "params": {"domains": ["finance"]}},
    )
    assert_blocks_ledger_only(
        gov_mesh,
        "plugin:require-steward",
        "products of domain finance must name a data steward",
    )


def test_unknown_plugin_is_a_located_spec_error(gov_mesh: GovMesh, rule_plugins: Path) -> None:
    write_custom_rule_mesh(gov_mesh, {"name": "steward", "rule": "plugin:require-stewart"})
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    assert (problem.file, problem.path) == (gov_mesh.domain_file("finance"), "policies[0].rule")
    assert problem.hint is not None
    assert "did you mean 'require-steward'?" in problem.hint


# ============================================================================== waivers

WAIVER = {
    "policy": "ownership",
    "reason": "The on-call rota starts in February (TICKET-12).",
    "approver": "governance-board@example.com",
    "expires": "2030-01-31",
}


def write_waiver_mesh(gov_mesh: GovMesh, waiver: dict[str, Any]) -> Path:
    no_on_call = {"technical": "ana@example.com", "business": "raj@example.com"}
    gov_mesh.write(
        {"sales": {"orders": orders(owner=no_on_call, waivers=[waiver])}},
        policies=[{"name": "ownership", "rule": "ownership"}],
    )
    return gov_mesh.product_file("sales.orders")


def test_waiver_applies_through_its_last_day_then_expires(
    gov_mesh: GovMesh, freeze_now: Callable[[datetime], None]
) -> None:
    file = write_waiver_mesh(gov_mesh, WAIVER)

    freeze_now(datetime(2030, 1, 31, 23, 59, 59, tzinfo=UTC))
    ws = gov_mesh.workspace()
    finding = gov_mesh.finding_of(ws.check_policies(record=False), "sales.orders", "ownership")
    assert finding.outcome == Outcome.WAIVED
    assert not finding.blocking
    assert finding.waiver == WAIVER
    assert finding.message == f"waived until 2030-01-31: {WAIVER['reason']}"
    (result,) = ws.build()
    assert result.status == "published"
    (stored,) = ws.catalog.policies.latest("sales.orders")
    assert (stored.outcome, stored.waiver) == ("waived", WAIVER)

    freeze_now(datetime(2030, 2, 1, 0, 0, tzinfo=UTC))
    ws = gov_mesh.workspace()
    (result,) = ws.build()
    assert result.status == "blocked"
    assert isinstance(result.error, PolicyError)
    messages = [p.message for p in result.error.problems]
    assert messages == [
        "[ownership] the product names no on-call owner",
        "[ownership] the waiver for 'ownership' expired on 2030-01-31",
    ]
    expired = result.error.problems[1]
    assert (expired.file, expired.path) == (file, "waivers[0].expires")
    assert expired.line == gov_mesh.line_of(file, r"^\s+expires: '?2030-01-31'?$")
    assert expired.hint is not None
    assert "renew the waiver" in expired.hint
    assert ws.snapshot("sales.orders") is not None  # the version published while waived stays


@pytest.mark.parametrize(
    ("now", "outcome"),
    [
        # 00:30 on 1 February in UTC+2 is still 31 January in UTC
        (datetime(2030, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))), Outcome.WAIVED),
        # 23:30 on 31 January in UTC-5 is already 1 February in UTC
        (datetime(2030, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5))), Outcome.FAILED),
    ],
    ids=["utc-still-jan-31", "utc-already-feb-1"],
)
def test_waiver_expiry_is_a_utc_date(
    gov_mesh: GovMesh, freeze_now: Callable[[datetime], None], now: datetime, outcome: Outcome
) -> None:
    write_waiver_mesh(gov_mesh, WAIVER)
    freeze_now(now)
    findings = gov_mesh.workspace().evaluate_policies(record=False)
    assert gov_mesh.finding_of(findings, "sales.orders", "ownership").outcome == outcome


@pytest.mark.parametrize(
    ("change", "path", "message", "hint"),
    [
        (
            {"policy": "ownershp"},
            "waivers[0].policy",
            "waiver names unknown policy 'ownershp'",
            "did you mean 'ownership'?",
        ),
        (
            {"approver": "ana@example.com"},
            "waivers[0].approver",
            "waiver approver 'ana@example.com' is not in the governance group",
            "only members of governance.group in mesh.yaml may approve waivers",
        ),
    ],
    ids=["unknown-policy", "approver-not-in-group"],
)
def test_invalid_waiver_is_a_spec_error(
    gov_mesh: GovMesh, change: dict[str, str], path: str, message: str, hint: str
) -> None:
    file = write_waiver_mesh(gov_mesh, {**WAIVER, **change})
    with pytest.raises(SpecError) as caught:
        _ = gov_mesh.workspace().mesh
    (problem,) = caught.value.problems
    key, value = next(iter(change.items()))
    assert (problem.file, problem.path, problem.message, problem.hint) == (
        file,
        path,
        message,
        hint,
    )
    assert problem.line == gov_mesh.line_of(file, rf"^\s*(- )?{key}: {value}$", after=r"^waivers:")


# ====================================================================== reports and catalog


def write_report_mesh(gov_mesh: GovMesh) -> None:
    """3 policies x 3 products: orders passes everything; ledger fails all three (one blocking);
    payments has a waived PII column and passes the rest."""
    payments_waiver = {
        "policy": "pii-masking",
        "reason": "Accounts are pseudonymous until the migration (TICKET-7).",
        "approver": "data-protection@example.com",
        "expires": "2099-12-31",
    }
    bad_ledger = ledger(
        owner={"technical": "a@example.com", "business": "b@example.com"},
        transform={"query": "select id, account, amount as AmountEUR from raw"},
        schema={
            "columns": [
                column("id", "bigint"),
                column("account", "varchar", pii=True),
                column("AmountEUR", "double"),
            ]
        },
    )
    gov_mesh.write(
        {
            "sales": {"orders": orders()},
            "finance": {
                "ledger": bad_ledger,
                "payments": ledger("payments", waivers=[payments_waiver]),
            },
        },
        policies=[
            {"name": "pii-masking", "rule": "pii-masking", "enforcement": "required"},
            {"name": "ownership", "rule": "ownership", "enforcement": "recommended"},
            {"name": "naming", "rule": "naming-convention", "enforcement": "optional"},
        ],
    )


def test_policy_check_reports_validate_against_their_schemas(
    gov_mesh: GovMesh, cli: Cli, tmp_path: Path
) -> None:
    write_report_mesh(gov_mesh)
    out_dir = tmp_path / "reports"
    for fmt, name in (("json", "policy.json"), ("junit", "junit.xml"), ("sarif", "policy.sarif")):
        code, _, err = cli(
            "policy", "check", "--mesh", gov_mesh.root, "-f", fmt, "-o", out_dir / name
        )
        assert code == 7, err
        assert f"wrote {out_dir / name}" in err

    document = json.loads((out_dir / "policy.json").read_text())
    jsonschema.Draft202012Validator(
        JSON_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    assert document["summary"] == {
        "products": 3,
        "policies": 3,
        "passed": 5,
        "failed": 3,
        "waived": 1,
        "errors": 0,
        "blocking": 1,
    }

    junit = xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))
    junit.validate(str(out_dir / "junit.xml"))
    assert junit.is_valid(str(out_dir / "junit.xml"))

    sarif = json.loads((out_dir / "policy.sarif").read_text())
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text("utf-8"))
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    pii = next(r for r in results if r["ruleId"] == "pii-masking" and "suppressions" not in r)
    region = pii["locations"][0]["physicalLocation"]["region"]
    file = gov_mesh.product_file("finance.ledger")
    assert region["startLine"] == gov_mesh.line_of(file, r"- name: account$")
    assert pii["level"] == "error"

    # fixed: nothing blocks any more, the exit code is 0
    gov_mesh.update_product("finance.ledger", **ledger(masked=True))
    code, out, _ = cli("policy", "check", "--mesh", gov_mesh.root, "-f", "json")
    assert code == 0
    assert json.loads(out)["summary"]["blocking"] == 0


def test_results_are_stored_per_product_version_and_summarised(gov_mesh: GovMesh, cli: Cli) -> None:
    write_report_mesh(gov_mesh)
    code, _, _ = cli("policy", "check", "--mesh", gov_mesh.root)
    assert code == 7

    ws = gov_mesh.workspace()
    for pid, product in ws.mesh.products.items():
        stored = ws.catalog.policies.latest(pid)
        assert sorted(r.policy for r in stored) == ["naming", "ownership", "pii-masking"]
        assert {(r.semver, r.spec_hash) for r in stored} == {
            (product.spec.version, product.spec_hash)
        }
    outcomes = {(r.policy, r.outcome) for r in ws.catalog.policies.latest("finance.ledger")}
    assert outcomes == {("naming", "failed"), ("ownership", "failed"), ("pii-masking", "failed")}

    code, out, _ = cli("policy", "report", "--mesh", gov_mesh.root, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["evaluated_products"] == 3
    assert report["domains"] == [
        {"domain": "finance", "products": 2, "checks": 6, "passed": 2, "failed": 3, "waived": 1,
         "compliance": "33%"},
        {"domain": "sales", "products": 1, "checks": 3, "passed": 3, "failed": 0, "waived": 0,
         "compliance": "100%"},
    ]  # fmt: skip
    assert report["policies"] == [
        {"policy": "naming", "rule": "naming-convention", "enforcement": "optional",
         "products": 3, "checks": 3, "passed": 2, "failed": 1, "waived": 0, "compliance": "67%"},
        {"policy": "ownership", "rule": "ownership", "enforcement": "recommended",
         "products": 3, "checks": 3, "passed": 2, "failed": 1, "waived": 0, "compliance": "67%"},
        {"policy": "pii-masking", "rule": "pii-masking", "enforcement": "required",
         "products": 3, "checks": 3, "passed": 1, "failed": 1, "waived": 1, "compliance": "33%"},
    ]  # fmt: skip

    # a new version of the spec: its results are stored against the new semver and hash
    gov_mesh.update_product("finance.ledger", **ledger(version="1.1.0", masked=True, owner=OWNER))
    code, _, _ = cli("policy", "check", "finance.ledger", "--mesh", gov_mesh.root)
    assert code == 0
    ws = gov_mesh.workspace()
    product = ws.mesh.products["finance.ledger"]
    stored = ws.catalog.policies.latest("finance.ledger")
    assert {(r.semver, r.spec_hash, r.outcome) for r in stored} == {
        ("1.1.0", product.spec_hash, "passed")
    }
    code, out, _ = cli("policy", "report", "--mesh", gov_mesh.root, "--json")
    finance = json.loads(out)["domains"][0]
    assert (finance["passed"], finance["failed"], finance["waived"]) == (5, 0, 1)


# ========================================================================== example mesh


def test_example_mesh_validates_with_only_recommended_warnings(example_mesh: Path) -> None:
    with Workspace(example_mesh) as ws:
        report = ws.validate()
        assert report.products == 9
        products = set(ws.mesh.products)
    assert {f.product for f in report.findings} == products
    problems = [f for f in report.findings if f.outcome != Outcome.PASSED]
    assert problems, "the example shows a recommended warning"
    assert all(f.outcome == Outcome.FAILED for f in problems)
    assert {str(f.enforcement) for f in problems} == {"recommended"}
    assert not any(f.blocking for f in report.findings)


@pytest.mark.slow
def test_example_mesh_publishes_every_product(built_example: Path, cli: Cli) -> None:
    code, out, _ = cli("products", "--mesh", built_example, "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 9
    assert all(r["published"] is not None and r["last_run"] == "success" for r in rows), rows
    with Workspace(built_example) as ws:
        stored = ws.catalog.policies.latest()
    assert {r.product_id for r in stored} == {r["id"] for r in rows}
    assert not [r for r in stored if r.outcome != "passed" and r.enforcement == "required"]


def test_example_rego_rule_requires_marketing_consent(example_mesh: Path, cli: Cli) -> None:
    folder = example_mesh / "domains" / "customer" / "products" / "contacts"
    spec_file = folder / "dataproduct.yaml"
    spec = spec_file.read_text()
    sql = (folder / "transform.sql").read_text()
    with Workspace(example_mesh) as ws:
        findings = ws.evaluate_policies(["customer.contacts"], record=False)
    consent = [f for f in findings if f.policy == "consent-recorded"]
    assert [f.outcome for f in consent] == [Outcome.PASSED]

    # drop the consent column from the schema, the SQL and the check that reads it
    column_block = spec[
        spec.index("    - name: marketing_opt_in") : spec.index("    - name: updated_at")
    ]
    check_block = spec[
        spec.index("  - type: sql\n    name: consent_without_email") : spec.index("slo:")
    ]
    spec_file.write_text(spec.replace(column_block, "").replace(check_block, ""))
    (folder / "transform.sql").write_text(
        sql.replace("    CAST(marketing_opt_in AS BOOLEAN) AS marketing_opt_in,\n", "")
    )
    assert "marketing_opt_in" not in spec_file.read_text() + (folder / "transform.sql").read_text()

    with Workspace(example_mesh) as ws:
        results = ws.build(["customer.contacts"])
        (stored,) = [
            r
            for r in ws.catalog.policies.latest("customer.contacts")
            if r.policy == "consent-recorded"
        ]
    assert statuses(results) == {"customer.contacts": "blocked"}
    assert (stored.rule, stored.origin, stored.enforcement, stored.outcome) == (
        "rego:policies/consent.rego",
        "domain:customer",
        "required",
        "failed",
    )
    (violation,) = stored.violations
    assert (
        violation["message"] == "a contact product must carry the marketing_opt_in consent column"
    )
    assert violation["path"] == "schema.columns"
    assert violation["line"] == _line(spec_file, "  columns:")
    assert violation["hint"] == "add marketing_opt_in (BOOLEAN) from the CRM consent table"

    # (`meshkit validate` would stop first at marketing.campaign_audience, whose SQL reads the
    # dropped column: a contract problem, exit 2)
    code, out, _ = cli("policy", "check", "customer.contacts", "--mesh", example_mesh, "-f", "json")
    assert code == 7
    (blocking,) = [f for f in json.loads(out)["findings"] if f["blocking"]]
    assert (blocking["product"], blocking["policy"]) == ("customer.contacts", "consent-recorded")


def _line(file: Path, text: str) -> int:
    return next(i for i, line in enumerate(file.read_text().splitlines(), 1) if line == text)


# ============================================================================= retention


@pytest.mark.slow
def test_retention_apply_deletes_expired_orders_as_a_new_version(
    built_example: Path, tmp_path: Path, cli: Cli, freeze_now: Callable[[datetime], None]
) -> None:
    root = copy_mesh(built_example, tmp_path / "example")
    now = datetime(2035, 6, 1, 12, 0, tzinfo=UTC)
    freeze_now(now)
    cutoff = (now - timedelta(days=14600)).date()  # sales.orders keeps 14600d of order_date
    assert date(1992, 1, 1) < cutoff < date(1998, 8, 2)  # inside TPC-H's order dates

    def state() -> tuple[int, int, int, list[tuple[int, int]]]:
        code, out, _ = cli("show", "sales.orders", "--mesh", root, "--json")
        assert code == 0
        versions = [(v["delta_version"], v["row_count"]) for v in json.loads(out)["versions"]]
        with Workspace(root) as ws:
            snapshot = ws.snapshot("sales.orders")
            assert snapshot is not None
            (row,) = ws.query(
                f"select count(*) as n, count(*) filter (where order_date < date '{cutoff}') as old "
                "from sales.orders"
            ).to_pylist()
        return snapshot.version, row["n"], row["old"], versions

    version, rows, expired, versions = state()
    assert rows == 15000
    assert 0 < expired < rows

    code, out, _ = cli("retention", "apply", "sales.orders", "--dry-run", "--mesh", root, "--json")
    assert code == 0
    (dry,) = json.loads(out)
    assert (dry["product"], dry["column"], dry["dry_run"]) == ("sales.orders", "order_date", True)
    assert (dry["rows_before"], dry["rows_deleted"], dry["version"]) == (rows, expired, None)
    assert dry["cutoff"].startswith(cutoff.isoformat())
    assert state() == (version, rows, expired, versions)  # nothing changed

    code, out, _ = cli("retention", "apply", "sales.orders", "--mesh", root, "--json")
    assert code == 0
    (applied,) = json.loads(out)
    assert (applied["rows_deleted"], applied["dry_run"]) == (expired, False)
    assert applied["version"] > version
    new_version, new_rows, new_expired, new_versions = state()
    assert (new_rows, new_expired) == (rows - expired, 0)
    assert new_versions[0] == (applied["version"], rows - expired)  # listed by `meshkit show`
    assert new_versions[1:] == versions
    assert new_version >= applied["version"]
