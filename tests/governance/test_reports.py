"""Policy reports: JSON, JUnit XML and SARIF, each validated against its real schema.

The SARIF 2.1.0 JSON Schema and the Jenkins xUnit JUnit XSD live in schemas/ (see its README for
where they come from), so no test needs the network.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest
import xmlschema

from meshkit.governance.findings import Finding, Outcome, Violation
from meshkit.governance.reports import (
    FORMATS,
    JSON_SCHEMA,
    SARIF_LEVELS,
    render,
    to_json,
    to_junit,
    to_sarif,
    write_report,
)
from meshkit.specs.policies import Enforcement

SCHEMAS = Path(__file__).parent / "schemas"
NOW = datetime(2025, 6, 1, 12, 30, 5, tzinfo=UTC)
TRICKY = "column \"email\" <PII> & 'quoted' — naïve café ✓ 日本語"

REQ, REC, OPT = Enforcement.REQUIRED, Enforcement.RECOMMENDED, Enforcement.OPTIONAL


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text("utf-8"))
    return schema


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMAS / "junit-10.xsd"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mesh"


def spec_file(root: Path, domain: str, name: str) -> Path:
    return root / "domains" / domain / "products" / name / "dataproduct.yaml"


def finding(
    product: str,
    policy: str,
    enforcement: Enforcement,
    outcome: Outcome,
    *violations: Violation,
    rule: str | None = None,
    origin: str = "global",
    description: str = "",
    waiver: dict[str, Any] | None = None,
) -> Finding:
    return Finding(
        product=product,
        policy=policy,
        rule=rule or policy,
        enforcement=enforcement,
        origin=origin,
        outcome=outcome,
        violations=list(violations),
        description=description,
        waiver=waiver,
    )


@pytest.fixture
def findings(root: Path, tmp_path: Path) -> list[Finding]:
    """A realistic policy run over four products: every outcome at every enforcement level."""
    orders = spec_file(root, "sales", "orders")
    daily = spec_file(root, "sales", "daily_revenue")
    summary = spec_file(root, "analytics", "revenue_summary")
    employees = spec_file(root, "hr", "employees")
    return [
        finding(
            "sales.orders",
            "owner-required",
            REQ,
            Outcome.PASSED,
            description="Every product names a technical and a business owner.",
        ),
        finding(
            "sales.orders",
            "pii-masking",
            REQ,
            Outcome.FAILED,
            Violation(
                f"{TRICKY} is classified pii but is not masked",
                path="schema.columns[2].masking",
                hint="add `masking: hash` to the column, or declassify it with a reason",
                file=orders,
                line=23,
                column=9,
            ),
            Violation(
                "column phone is classified pii but is not masked",
                path="schema.columns[4]",
                file=orders,
                line=31,
            ),
            rule="pii-masking",
            description='PII columns are masked before publication ("hash" or "redact").',
        ),
        finding(
            "sales.orders",
            "description-quality",
            REC,
            Outcome.FAILED,
            Violation(
                "the description is shorter than 40 characters",
                path="description",
                hint="say what a row is and who uses the product",
            ),  # no file: the product's dataproduct.yaml
            rule="rego:policies/description.rego",
            origin="domain:sales",
            description="Descriptions help consumers find the product.",
        ),
        finding(
            "sales.orders",
            "tags-present",
            OPT,
            Outcome.FAILED,
            Violation("the product has no 'team:' tag"),  # no file, no path
            rule="plugin:tags",
        ),
        finding(
            "sales.daily_revenue",
            "pii-masking",
            REQ,
            Outcome.WAIVED,
            Violation(
                "column customer_name is classified pii but is not masked",
                path="schema.columns[1].masking",
                hint="add `masking: hash` to the column",
                file=daily,
                line=18,
                column=11,
            ),
            rule="pii-masking",
            description='PII columns are masked before publication ("hash" or "redact").',
            waiver={
                "policy": "pii-masking",
                "reason": "Finance reconciliation needs names until Q3 <migration> & 'cleanup'",
                "approver": "governance@example.com",
                "expires": "2025-09-30",
            },
        ),
        finding(
            "sales.daily_revenue",
            "freshness-slo",
            REC,
            Outcome.ERROR,
            Violation(
                "could not be evaluated, so it counts as failed: the catalog is unreachable",
                hint="fix the error above; policies fail closed",
                file=daily,
            ),
            origin="domain:sales",
        ),
        finding(
            "analytics.revenue_summary",
            "pii-masking",
            REQ,
            Outcome.ERROR,
            Violation(
                "could not be evaluated, so it counts as failed: lineage of sales.orders is unknown",
                hint="fix the error above; policies fail closed",
                file=summary,
            ),
            rule="pii-masking",
            description='PII columns are masked before publication ("hash" or "redact").',
        ),
        finding(
            "analytics.revenue_summary",
            "owner-required",
            REQ,
            Outcome.PASSED,
            description="Every product names a technical and a business owner.",
        ),
        finding(
            "hr.employees",
            "naming",
            OPT,
            Outcome.ERROR,
            Violation(
                "could not be evaluated, so it counts as failed: policies/naming.rego: syntax error",
                path="name",
                file=tmp_path / "shared policies" / "naming.rego",  # outside the mesh root
                line=3,
            ),
            rule="rego:naming.rego",
        ),
        finding(
            "hr.employees",
            "retention",
            REC,
            Outcome.WAIVED,
            Violation(
                "platform retention of 30d is below the 90d the hr domain requires",
                path="platform.retention",
                file=root / "mesh.yaml",
                line=12,
                column=3,
            ),
            Violation("the product keeps no history", path="output.mode", file=employees, line=40),
            origin="domain:hr",
            waiver={
                "policy": "retention",
                "reason": "Legal approved shorter retention for the pilot.",
                "approver": "dpo@example.com",
                "expires": "2025-12-31",
            },
        ),
    ]


# --- JSON -------------------------------------------------------------------------------------


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert JSON_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)


def test_json_report_validates_and_summarizes(findings: list[Finding]) -> None:
    document = to_json(findings, generated_at=NOW)
    validator = jsonschema.Draft202012Validator(
        JSON_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(document)
    validator.validate(json.loads(json.dumps(document)))  # as written to disk

    assert document["version"] == 1
    assert document["generated_at"] == "2025-06-01T12:30:05Z"
    assert (
        document["summary"]
        == {
            "products": 4,
            "policies": 7,
            "passed": 2,
            "failed": 3,
            "waived": 2,
            "errors": 3,
            "blocking": 2,  # sales.orders/pii-masking failed, analytics.revenue_summary/pii-masking errored
        }
    )
    assert document["findings"] == [f.to_dict() for f in findings]


def test_json_generated_at_is_utc() -> None:
    assert to_json([], generated_at=datetime(2025, 6, 1, 12, 0))["generated_at"] == (
        "2025-06-01T12:00:00Z"
    )
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2025, 6, 1, 14, 0, 0, 999, tzinfo=plus_two)
    assert to_json([], generated_at=moment)["generated_at"] == "2025-06-01T12:00:00Z"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["findings"][0].update(outcome="skipped"),
        lambda d: d["findings"][0].update(enforcement="mandatory"),
        lambda d: d["findings"][1]["violations"][0].update(line=0),
        lambda d: d["findings"][1]["violations"][0].pop("path"),
        lambda d: d["summary"].pop("blocking"),
        lambda d: d.update(version=2),
        lambda d: d.update(extra=True),
    ],
)
def test_json_schema_rejects_broken_reports(findings: list[Finding], mutate: Any) -> None:
    document = copy.deepcopy(to_json(findings, generated_at=NOW))
    mutate(document)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)


# --- JUnit XML --------------------------------------------------------------------------------


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml.encode("utf-8"))


def cases(tree: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {
        (case.get("classname", ""), case.get("name", "")): case for case in tree.iter("testcase")
    }


def test_junit_validates_against_the_jenkins_schema(
    findings: list[Finding], root: Path, junit_schema: xmlschema.XMLSchema
) -> None:
    xml = to_junit(findings, generated_at=NOW, root=root)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    junit_schema.validate(xml)


def test_junit_has_a_suite_per_product_and_right_counts(
    findings: list[Finding], root: Path
) -> None:
    tree = parse(to_junit(findings, generated_at=NOW, root=root))
    assert tree.tag == "testsuites"
    assert (tree.get("tests"), tree.get("failures"), tree.get("errors")) == ("10", "2", "2")

    suites = {s.get("name"): s for s in tree.findall("testsuite")}
    assert list(suites) == [
        "sales.orders",
        "sales.daily_revenue",
        "analytics.revenue_summary",
        "hr.employees",
    ]
    counts = {
        name: tuple(int(s.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped"))
        for name, s in suites.items()
    }
    assert counts == {
        "sales.orders": (4, 2, 0, 1),  # pii failed, description failed, tags optional
        "sales.daily_revenue": (2, 0, 1, 1),  # pii waived, freshness errored
        "analytics.revenue_summary": (2, 0, 1, 0),
        "hr.employees": (2, 0, 0, 2),  # optional error, waived
    }
    for name, suite in suites.items():
        assert suite.get("timestamp") == "2025-06-01T12:30:05"
        assert len(suite.findall("testcase")) == counts[name][0]
        assert len(suite.findall("testcase/failure")) == counts[name][1]
        assert len(suite.findall("testcase/error")) == counts[name][2]
        assert len(suite.findall("testcase/skipped")) == counts[name][3]
        assert {c.get("classname") for c in suite.iter("testcase")} == {name}


def test_junit_maps_outcomes_and_enforcement(findings: list[Finding], root: Path) -> None:
    by_case = cases(parse(to_junit(findings, generated_at=NOW, root=root)))

    assert list(by_case["sales.orders", "owner-required"]) == []  # a pass has no child

    failure = by_case["sales.orders", "pii-masking"].find("failure")
    assert failure is not None
    assert failure.get("type") == "required"
    assert failure.get("message") == findings[1].message
    assert failure.text is not None
    assert failure.text.splitlines() == [
        'policy pii-masking (required, global, rule pii-masking): PII columns are masked before publication ("hash" or "redact").',
        "domains/sales/products/orders/dataproduct.yaml:23:9 schema.columns[2].masking: "
        f"{TRICKY} is classified pii but is not masked "
        "(add `masking: hash` to the column, or declassify it with a reason)",
        "domains/sales/products/orders/dataproduct.yaml:31 schema.columns[4]: "
        "column phone is classified pii but is not masked",
    ]

    recommended = by_case["sales.orders", "description-quality"].find("failure")
    assert recommended is not None
    assert recommended.get("type") == "recommended"
    assert recommended.text is not None
    # no file on the violation: the product's file, learnt from its other violations
    assert recommended.text.splitlines()[1] == (
        "domains/sales/products/orders/dataproduct.yaml description: the description is "
        "shorter than 40 characters (say what a row is and who uses the product)"
    )

    optional = by_case["sales.orders", "tags-present"].find("skipped")
    assert optional is not None
    assert optional.get("type") == "optional"
    assert optional.get("message") == "optional policy failed: the product has no 'team:' tag"
    assert optional.text is not None
    assert optional.text.splitlines()[-1] == (
        "domains/sales/products/orders/dataproduct.yaml: the product has no 'team:' tag"
    )

    waived = by_case["sales.daily_revenue", "pii-masking"].find("skipped")
    assert waived is not None
    assert waived.get("type") == "waived"
    assert waived.get("message") == (
        "waived until 2025-09-30: Finance reconciliation needs names until Q3 <migration> & 'cleanup'"
    )
    assert waived.text is not None
    assert "waived by governance@example.com until 2025-09-30" in waived.text

    error = by_case["analytics.revenue_summary", "pii-masking"].find("error")
    assert error is not None
    assert error.get("type") == "required"
    assert error.get("message", "").startswith("could not be evaluated")

    recommended_error = by_case["sales.daily_revenue", "freshness-slo"].find("error")
    assert recommended_error is not None
    assert recommended_error.get("type") == "recommended"

    optional_error = by_case["hr.employees", "naming"].find("skipped")
    assert optional_error is not None
    assert optional_error.get("message", "").startswith("optional policy could not be evaluated")
    assert optional_error.text is not None
    outside = optional_error.text.splitlines()[-1]
    assert outside.startswith(str(root.parent / "shared policies" / "naming.rego") + ":3 name: ")


def test_junit_without_root_shows_files_as_given(findings: list[Finding], root: Path) -> None:
    tree = parse(to_junit(findings, generated_at=NOW))
    failure = cases(tree)["sales.orders", "pii-masking"].find("failure")
    assert failure is not None
    assert failure.text is not None
    assert f"{spec_file(root, 'sales', 'orders')}:23:9 " in failure.text


def test_junit_special_characters_survive(junit_schema: xmlschema.XMLSchema) -> None:
    nasty = f'{TRICKY} ]]> "\n\t end'
    items = [
        finding(
            "sales.orders",
            f"policy {TRICKY}",
            REQ,
            Outcome.FAILED,
            Violation(nasty, path="a.b", hint=f"hint {TRICKY}"),
            description=TRICKY,
        ),
        finding("sales.orders", "bell", REQ, Outcome.FAILED, Violation("ring \x07 the \x00 bell")),
    ]
    xml = to_junit(items, generated_at=NOW)
    junit_schema.validate(xml)
    tree = parse(xml)
    case = cases(tree)["sales.orders", f"policy {TRICKY}"]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == nasty  # attributes keep quotes, <, &, newlines, unicode
    assert failure.text is not None
    assert f"a.b: {nasty} (hint {TRICKY})" in failure.text
    assert TRICKY in failure.text.splitlines()[0]

    bell = cases(tree)["sales.orders", "bell"].find("failure")
    assert bell is not None
    assert bell.get("message") == "ring \ufffd the \ufffd bell"  # XML 1.0 cannot carry them


def test_junit_of_no_findings_is_valid(junit_schema: xmlschema.XMLSchema) -> None:
    xml = to_junit([], generated_at=NOW)
    junit_schema.validate(xml)
    tree = parse(xml)
    assert (tree.get("tests"), tree.get("failures"), tree.get("errors")) == ("0", "0", "0")


# --- SARIF ------------------------------------------------------------------------------------


def sarif_validate(log: dict[str, Any], schema: dict[str, Any]) -> None:
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft4Validator  # the OASIS schema is draft-04
    cls.check_schema(schema)
    cls(schema).validate(json.loads(json.dumps(log)))


def test_sarif_validates_against_the_oasis_schema(
    findings: list[Finding], root: Path, sarif_schema: dict[str, Any]
) -> None:
    log = to_sarif(findings, tool_version="0.1.0", root=root)
    sarif_validate(log, sarif_schema)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    driver = log["runs"][0]["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("meshkit", "0.1.0")


def test_sarif_schema_is_strict_enough(
    findings: list[Finding], root: Path, sarif_schema: dict[str, Any]
) -> None:
    """The schema would catch the mistakes these tests guard against."""
    log = to_sarif(findings, tool_version="0.1.0", root=root)
    for broken in (
        {**log, "version": "2.0.0"},
        {**log, "runs": [{**log["runs"][0], "results": [{"level": "fatal"}]}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft4Validator(sarif_schema).validate(broken)


def test_sarif_has_one_rule_per_policy(findings: list[Finding], root: Path) -> None:
    run = to_sarif(findings, tool_version="0.1.0", root=root)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [
        "owner-required",
        "pii-masking",
        "description-quality",
        "tags-present",
        "freshness-slo",
        "naming",
        "retention",
    ]
    by_id = {r["id"]: r for r in rules}
    assert by_id["pii-masking"]["shortDescription"]["text"] == (
        'PII columns are masked before publication ("hash" or "redact").'
    )
    assert by_id["tags-present"]["shortDescription"]["text"] == "meshkit policy tags-present"
    expected = {
        "owner-required": ("required", "error"),
        "pii-masking": ("required", "error"),
        "description-quality": ("recommended", "warning"),
        "tags-present": ("optional", "note"),
        "freshness-slo": ("recommended", "warning"),
        "naming": ("optional", "note"),
        "retention": ("recommended", "warning"),
    }
    for rule_id, (enforcement, level) in expected.items():
        assert by_id[rule_id]["properties"]["enforcement"] == enforcement
        assert by_id[rule_id]["defaultConfiguration"]["level"] == level
    assert by_id["description-quality"]["properties"]["rule"] == "rego:policies/description.rego"
    assert by_id["description-quality"]["properties"]["origin"] == "domain:sales"


def test_sarif_results_levels_and_locations(findings: list[Finding], root: Path) -> None:
    run = to_sarif(findings, tool_version="0.1.0", root=root)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    # one result per violation of every failed, errored or waived finding; none for passes
    reported = [f for f in findings if f.outcome != Outcome.PASSED]
    assert len(results) == sum(len(f.violations) for f in reported) == 10
    assert not any(r["ruleId"] == "owner-required" for r in results)
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["kind"] == "fail"
        assert result["level"] == SARIF_LEVELS[Enforcement(result_enforcement(result, findings))]

    assert run["originalUriBaseIds"]["MESHROOT"]["uri"] == root.as_uri() + "/"

    first = results[0]
    assert first["ruleId"] == "pii-masking"
    assert first["level"] == "error"
    assert first["message"]["text"] == (
        f"{TRICKY} is classified pii but is not masked "
        "(add `masking: hash` to the column, or declassify it with a reason)"
    )
    assert first["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {
                    "uri": "domains/sales/products/orders/dataproduct.yaml",
                    "uriBaseId": "MESHROOT",
                },
                "region": {"startLine": 23, "startColumn": 9},
            }
        }
    ]
    assert first["properties"]["path"] == "schema.columns[2].masking"
    assert first["properties"]["blocking"] is True
    assert "suppressions" not in first

    second = results[1]
    assert second["message"]["text"] == "column phone is classified pii but is not masked"
    assert second["locations"][0]["physicalLocation"]["region"] == {"startLine": 31}

    by_policy = {(r["properties"]["product"], r["ruleId"]): r for r in results}
    # no file on the violation: located in the product's file, without a region
    description = by_policy["sales.orders", "description-quality"]
    assert description["level"] == "warning"
    assert description["locations"][0]["physicalLocation"] == {
        "artifactLocation": {
            "uri": "domains/sales/products/orders/dataproduct.yaml",
            "uriBaseId": "MESHROOT",
        }
    }
    assert by_policy["sales.orders", "tags-present"]["level"] == "note"

    # errors are results too, and tool execution notifications
    errored = by_policy["analytics.revenue_summary", "pii-masking"]
    assert errored["level"] == "error"
    assert errored["properties"]["outcome"] == "error"
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    assert [(n["associatedRule"]["id"], n["level"]) for n in notifications] == [
        ("freshness-slo", "error"),
        ("pii-masking", "error"),
        ("naming", "error"),
    ]
    assert run["invocations"][0]["executionSuccessful"] is True

    # a file outside the mesh root keeps its absolute URI
    outside = by_policy["hr.employees", "naming"]["locations"][0]["physicalLocation"]
    assert outside["artifactLocation"] == {
        "uri": (root.parent / "shared policies" / "naming.rego").as_uri()
    }
    assert outside["region"] == {"startLine": 3}


def result_enforcement(result: dict[str, Any], findings: list[Finding]) -> str:
    props = result["properties"]
    [match] = [f for f in findings if (f.product, f.policy) == (props["product"], props["policy"])]
    return str(match.enforcement)


def test_sarif_waived_findings_are_suppressed(findings: list[Finding], root: Path) -> None:
    results = to_sarif(findings, tool_version="0.1.0", root=root)["runs"][0]["results"]
    suppressed = [r for r in results if "suppressions" in r]
    assert [(r["properties"]["product"], r["ruleId"]) for r in suppressed] == [
        ("sales.daily_revenue", "pii-masking"),
        ("hr.employees", "retention"),
        ("hr.employees", "retention"),
    ]
    assert suppressed[0]["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "Finance reconciliation needs names until Q3 <migration> & 'cleanup'",
            "properties": {"approver": "governance@example.com", "expires": "2025-09-30"},
        }
    ]
    assert suppressed[0]["level"] == "error"  # still at its policy's level, but suppressed
    assert suppressed[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "mesh.yaml"
    )
    unsuppressed = [r for r in results if "suppressions" not in r]
    assert all(r["properties"]["outcome"] in ("failed", "error") for r in unsuppressed)


def test_sarif_uris_are_encoded_and_relative(tmp_path: Path, sarif_schema: dict[str, Any]) -> None:
    root = tmp_path / "my mesh"
    odd = root / "domains" / "ventes" / "products" / "café #1" / "dataproduct.yaml"
    items = [
        finding("ventes.cafe", "p", REC, Outcome.FAILED, Violation(TRICKY, file=odd, line=1)),
        finding(
            "ventes.cafe",
            "q",
            REC,
            Outcome.FAILED,
            Violation("relative", file=Path("domains/ventes/mesh.yaml"), line=2, column=1),
        ),
    ]
    log = to_sarif(items, tool_version="0.1.0", root=root)
    sarif_validate(log, sarif_schema)
    run = log["runs"][0]
    uri = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "domains/ventes/products/caf%C3%A9%20%231/dataproduct.yaml"
    assert unquote(uri) == odd.relative_to(root).as_posix()
    assert run["results"][0]["message"]["text"] == TRICKY
    relative = run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert relative == {"uri": "domains/ventes/mesh.yaml", "uriBaseId": "MESHROOT"}
    assert run["originalUriBaseIds"]["MESHROOT"]["uri"].endswith("/my%20mesh/")


def test_sarif_product_files_locate_violations_without_a_file(
    root: Path, sarif_schema: dict[str, Any]
) -> None:
    items = [
        finding("sales.orders", "tags-present", OPT, Outcome.FAILED, Violation("no team tag")),
        finding("hr.employees", "tags-present", OPT, Outcome.FAILED, Violation("no team tag")),
        finding("sales.orders", "custom", REQ, Outcome.ERROR),  # no violation at all
    ]
    orders = spec_file(root, "sales", "orders")
    log = to_sarif(items, tool_version="0.1.0", root=root, product_files={"sales.orders": orders})
    sarif_validate(log, sarif_schema)
    results = log["runs"][0]["results"]
    assert len(results) == 3
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "domains/sales/products/orders/dataproduct.yaml"
    )
    assert "locations" not in results[1]  # nothing says where hr.employees lives
    assert results[2]["level"] == "error"
    assert results[2]["message"]["text"] == "policy failed"
    assert results[2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "domains/sales/products/orders/dataproduct.yaml"
    )


def test_sarif_of_no_findings_is_valid(root: Path, sarif_schema: dict[str, Any]) -> None:
    log = to_sarif([], tool_version="0.1.0", root=root)
    sarif_validate(log, sarif_schema)
    run = log["runs"][0]
    assert run["results"] == []
    assert run["tool"]["driver"]["rules"] == []
    assert "toolExecutionNotifications" not in run["invocations"][0]


def test_sarif_fingerprints_are_stable_across_line_moves(root: Path) -> None:
    def log(line: int) -> dict[str, Any]:
        v = Violation("m", path="schema.columns[0]", file=spec_file(root, "s", "p"), line=line)
        return to_sarif([finding("s.p", "x", REQ, Outcome.FAILED, v)], tool_version="1", root=root)

    first, moved = (log(n)["runs"][0]["results"][0]["partialFingerprints"] for n in (3, 9))
    assert first == moved


# --- writing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_report_writes_each_format(
    fmt: Any,
    findings: list[Finding],
    root: Path,
    tmp_path: Path,
    sarif_schema: dict[str, Any],
    junit_schema: xmlschema.XMLSchema,
) -> None:
    path = tmp_path / "reports" / "nested" / f"policy.{fmt}"
    write_report(findings, fmt=fmt, path=path, root=root, tool_version="0.1.0", generated_at=NOW)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert "naïve café ✓ 日本語" in text  # UTF-8, not \u escapes or character references
    assert text == render(findings, fmt=fmt, root=root, tool_version="0.1.0", generated_at=NOW)
    if fmt == "json":
        document = json.loads(text)
        jsonschema.validate(document, JSON_SCHEMA, cls=jsonschema.Draft202012Validator)
        assert document["summary"]["blocking"] == 2
    elif fmt == "junit":
        junit_schema.validate(str(path))
        assert parse(text).get("tests") == "10"
        failure = ET.parse(path).getroot().find("testsuite/testcase/failure")
        assert failure is not None
        assert TRICKY in failure.get("message", "")
    else:
        sarif_validate(json.loads(text), sarif_schema)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left

    write_report([], fmt=fmt, path=path, root=root, tool_version="0.1.0", generated_at=NOW)
    assert path.read_text(encoding="utf-8") != text  # replaced whole


def test_write_report_rejects_an_unknown_format(tmp_path: Path, root: Path) -> None:
    path = tmp_path / "report.txt"
    with pytest.raises(ValueError, match="unknown report format 'html'"):
        write_report(
            [],
            fmt="html",  # type: ignore[arg-type]
            path=path,
            root=root,
            tool_version="0.1.0",
            generated_at=NOW,
        )
    assert not path.exists()
