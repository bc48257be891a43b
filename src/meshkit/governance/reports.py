"""Policy results in the formats CI systems and code review tools read: JSON, JUnit XML, SARIF.

- JSON: meshkit's own document (`JSON_SCHEMA` describes it): a summary and every finding.
- JUnit XML: one <testsuite> per product and one <testcase> per policy, so any CI server's test
  view lists which product breaks which policy. Required and recommended failures are <failure>s,
  a policy that could not be evaluated is an <error>, optional failures and waived ones are
  <skipped> (reported, never red).
- SARIF 2.1.0: one run of the tool "meshkit", one rule per policy and one result per violation,
  located in the spec file relative to the mesh root, so code scanning annotates the YAML line to
  fix. Waived failures are results with an external suppression carrying the waiver's reason.

Violations without a file are located in their product's dataproduct.yaml: pass `product_files`
(product id -> spec file) where the caller knows them; otherwise the product's file is taken from
its other violations where one names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import quote

from meshkit.catalog.records import PolicyRecord
from meshkit.governance.findings import Finding, Outcome, Violation
from meshkit.specs.loader import PRODUCT_FILE
from meshkit.specs.policies import Enforcement

ReportFormat = Literal["json", "junit", "sarif"]
FORMATS: tuple[str, ...] = get_args(ReportFormat)
JSON_VERSION = 1
SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
ROOT_BASE_ID = "MESHROOT"  # SARIF uriBaseId of the mesh root; artifact URIs are relative to it
TOOL_NAME = "meshkit"

SARIF_LEVELS: dict[Enforcement, str] = {
    Enforcement.REQUIRED: "error",
    Enforcement.RECOMMENDED: "warning",
    Enforcement.OPTIONAL: "note",
}

_REPORTED = (Outcome.FAILED, Outcome.ERROR, Outcome.WAIVED)

_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
_NULLABLE_POSITION: dict[str, Any] = {"type": ["integer", "null"], "minimum": 1}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:meshkit:policy-report:v1",
    "title": "meshkit policy report",
    "description": "What `meshkit policy check --format json` writes: one finding per (product, policy).",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "generated_at", "summary", "findings"],
    "properties": {
        "version": {"const": JSON_VERSION, "description": "Version of this document's format."},
        "generated_at": {
            "type": "string",
            "format": "date-time",
            "description": "When the policies were evaluated (RFC 3339, UTC).",
        },
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "products",
                "policies",
                "passed",
                "failed",
                "waived",
                "errors",
                "blocking",
            ],
            "properties": {
                "products": {**_COUNT, "description": "Distinct products evaluated."},
                "policies": {**_COUNT, "description": "Distinct policies that applied."},
                "passed": {**_COUNT, "description": "Findings that passed."},
                "failed": {**_COUNT, "description": "Findings that failed (any enforcement)."},
                "waived": {**_COUNT, "description": "Failed findings covered by a valid waiver."},
                "errors": {**_COUNT, "description": "Findings that could not be evaluated."},
                "blocking": {
                    **_COUNT,
                    "description": "Failed or errored findings of required policies.",
                },
            },
        },
        "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
    },
    "$defs": {
        "finding": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "product",
                "policy",
                "rule",
                "enforcement",
                "origin",
                "outcome",
                "blocking",
                "description",
                "message",
                "hint",
                "waiver",
                "violations",
            ],
            "properties": {
                "product": {"type": "string", "description": "Product id, `domain.name`."},
                "policy": {"type": "string", "description": "The policy's name."},
                "rule": {
                    "type": "string",
                    "description": "The rule it runs: a built-in id, `rego:<file>` or `plugin:<name>`.",
                },
                "enforcement": {"enum": [str(e) for e in Enforcement]},
                "origin": {
                    "type": "string",
                    "pattern": "^(global|domain:.+|global\\+domain:.+)$",
                    "description": "`global` or `domain:<name>`.",
                },
                "outcome": {"enum": [str(o) for o in Outcome]},
                "blocking": {
                    "type": "boolean",
                    "description": "A required policy failed or errored: validate and build stop.",
                },
                "description": {"type": "string"},
                "message": {"type": "string"},
                "hint": _NULLABLE_STRING,
                "waiver": {
                    "description": "The waiver that applied, if any.",
                    "anyOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "properties": {
                                "policy": {"type": "string"},
                                "reason": {"type": "string"},
                                "approver": {"type": "string"},
                                "expires": {"type": "string", "format": "date"},
                            },
                        },
                    ],
                },
                "violations": {"type": "array", "items": {"$ref": "#/$defs/violation"}},
            },
        },
        "violation": {
            "type": "object",
            "additionalProperties": False,
            "required": ["message", "path", "hint", "file", "line", "column"],
            "properties": {
                "message": {"type": "string"},
                "path": {
                    **_NULLABLE_STRING,
                    "description": "YAML path of the key to fix, e.g. schema.columns[2].masking.",
                },
                "hint": _NULLABLE_STRING,
                "file": _NULLABLE_STRING,
                "line": _NULLABLE_POSITION,
                "column": _NULLABLE_POSITION,
            },
        },
    },
}


# --- JSON -------------------------------------------------------------------------------------


def summarize(findings: Sequence[Finding]) -> dict[str, int]:
    """Counts of products, policies and findings by outcome."""
    outcomes = [f.outcome for f in findings]
    return {
        "products": len({f.product for f in findings}),
        "policies": len({f.policy for f in findings}),
        "passed": outcomes.count(Outcome.PASSED),
        "failed": outcomes.count(Outcome.FAILED),
        "waived": outcomes.count(Outcome.WAIVED),
        "errors": outcomes.count(Outcome.ERROR),
        "blocking": sum(1 for f in findings if f.blocking),
    }


def compliance(records: Sequence[PolicyRecord]) -> dict[str, Any]:
    """Compliance per domain and per policy over stored results (`meshkit policy report`)."""
    domains: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    for r in records:
        domain = r.product_id.split(".", 1)[0]
        for key, table, extra in (
            (domain, domains, {"domain": domain}),
            (
                r.policy,
                policies,
                {"policy": r.policy, "rule": r.rule, "enforcement": r.enforcement},
            ),
        ):
            row = table.setdefault(
                key,
                {
                    **extra,
                    "products": set(),
                    "checks": 0,
                    "passed": 0,
                    "failed": 0,
                    "waived": 0,
                },
            )
            row["products"].add(r.product_id)
            row["checks"] += 1
            bucket = "failed" if r.outcome in ("failed", "error") else r.outcome
            row[bucket] += 1
    for table in (domains, policies):
        for row in table.values():
            row["products"] = len(row["products"])
            row["compliance"] = (
                f"{100 * row['passed'] / row['checks']:.0f}%" if row["checks"] else "-"
            )
    return {
        "domains": sorted(domains.values(), key=lambda r: r["domain"]),
        "policies": sorted(policies.values(), key=lambda r: r["policy"]),
        "evaluated_products": len({r.product_id for r in records}),
    }


def to_json(findings: Sequence[Finding], *, generated_at: datetime) -> dict[str, Any]:
    """meshkit's own report document; `JSON_SCHEMA` validates it."""
    return {
        "version": JSON_VERSION,
        "generated_at": _timestamp(generated_at),
        "summary": summarize(findings),
        "findings": [f.to_dict() for f in findings],
    }


# --- JUnit XML --------------------------------------------------------------------------------


def to_junit(
    findings: Sequence[Finding],
    *,
    generated_at: datetime,
    root: Path | None = None,
    product_files: Mapping[str, Path] | None = None,
) -> str:
    """JUnit XML (the Jenkins/Ant dialect every CI reads): a test suite per product.

    Files in violation texts are shown relative to `root` when they lie under it.
    """
    files = _product_files(findings, product_files)
    timestamp = _utc(generated_at).replace(tzinfo=None).isoformat(timespec="seconds")
    suites = ET.Element("testsuites", {"name": "meshkit policy check"})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for product, group in _by_product(findings).items():
        suite = ET.SubElement(suites, "testsuite", {"name": _xml_text(product)})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for finding in group:
            case = ET.SubElement(
                suite,
                "testcase",
                {"name": _xml_text(finding.policy), "classname": _xml_text(product), "time": "0"},
            )
            counts["tests"] += 1
            outcome = _junit_outcome(finding)
            if outcome is None:
                continue
            tag, kind, message = outcome
            counts["skipped" if tag == "skipped" else f"{tag}s"] += 1
            element = ET.SubElement(
                case, tag, {"message": _xml_text(message), "type": _xml_text(kind)}
            )
            element.text = _xml_text(_junit_details(finding, files.get(product), root))
        suite.attrib.update({key: str(value) for key, value in counts.items()})
        suite.attrib.update({"time": "0", "timestamp": timestamp})
        for key in totals:
            totals[key] += counts[key]
    suites.attrib.update({key: str(value) for key, value in totals.items()})
    suites.set("time", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _junit_outcome(finding: Finding) -> tuple[str, str, str] | None:
    """(element, type, message) for a finding that is not a plain pass."""
    if finding.outcome == Outcome.PASSED:
        return None
    if finding.outcome == Outcome.WAIVED:
        return "skipped", "waived", finding.message
    if finding.enforcement == Enforcement.OPTIONAL:  # optional failures are only reported
        what = "could not be evaluated" if finding.outcome == Outcome.ERROR else "failed"
        return "skipped", "optional", f"optional policy {what}: {finding.message}"
    tag = "error" if finding.outcome == Outcome.ERROR else "failure"
    return tag, str(finding.enforcement), finding.message


def _junit_details(finding: Finding, product_file: Path | None, root: Path | None) -> str:
    head = f"policy {finding.policy} ({finding.enforcement}, {finding.origin}, rule {finding.rule})"
    lines = [f"{head}: {finding.description}" if finding.description else head]
    if finding.outcome == Outcome.WAIVED and finding.waiver is not None:
        waiver = finding.waiver
        by = f" by {waiver['approver']}" if waiver.get("approver") else ""
        until = f" until {waiver['expires']}" if waiver.get("expires") else ""
        lines.append(f"waived{by}{until}: {waiver.get('reason') or 'no reason given'}")
    for v in finding.violations:
        file = v.file or product_file
        where = _display_path(file, root) if file is not None else ""
        if where and v.line is not None:
            where += f":{v.line}" + (f":{v.column}" if v.column is not None else "")
        prefix = " ".join(part for part in (where, v.path) if part)
        text = f"{prefix}: {v.message}" if prefix else v.message
        lines.append(f"{text} ({v.hint})" if v.hint else text)
    return "\n".join(lines)


# --- SARIF ------------------------------------------------------------------------------------


def to_sarif(
    findings: Sequence[Finding],
    *,
    tool_version: str,
    root: Path,
    product_files: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log: failed, errored and (suppressed) waived findings, one result per violation."""
    files = _product_files(findings, product_files)
    base = _absolute(root)
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for finding in findings:
        if finding.policy not in index:
            index[finding.policy] = len(rules)
            rules.append(_sarif_rule(finding))
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for finding in findings:
        if finding.outcome not in _REPORTED:
            continue
        violations = finding.violations or [Violation(finding.message or "policy failed")]
        for violation in violations:
            results.append(_sarif_result(finding, violation, index[finding.policy], files, base))
        if finding.outcome == Outcome.ERROR:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{finding.product}: {finding.policy}: {finding.message}"},
                    "associatedRule": {"id": finding.policy, "index": index[finding.policy]},
                }
            )
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version,
                        "rules": rules,
                    }
                },
                "invocations": [invocation],
                "originalUriBaseIds": {
                    ROOT_BASE_ID: {
                        "uri": _directory_uri(base),
                        "description": {"text": "The mesh root (the folder of mesh.yaml)."},
                    }
                },
                "columnKind": "unicodeCodePoints",  # YAML columns count characters
                "results": results,
            }
        ],
    }


def _sarif_rule(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.policy,
        "shortDescription": {"text": finding.description or f"meshkit policy {finding.policy}"},
        "defaultConfiguration": {"level": SARIF_LEVELS[finding.enforcement]},
        "properties": {
            "enforcement": str(finding.enforcement),
            "origin": finding.origin,
            "rule": finding.rule,
            "tags": ["meshkit", "governance"],
        },
    }


def _sarif_result(
    finding: Finding,
    violation: Violation,
    rule_index: int,
    files: Mapping[str, Path],
    base: Path,
) -> dict[str, Any]:
    text = violation.message
    if violation.hint:
        text += f" ({violation.hint})"
    fingerprint = hashlib.sha256(
        "\0".join((finding.product, finding.policy, violation.path, violation.message)).encode()
    ).hexdigest()
    result: dict[str, Any] = {
        "ruleId": finding.policy,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": SARIF_LEVELS[finding.enforcement],
        "message": {"text": text},
        "partialFingerprints": {"meshkitViolation/v1": fingerprint},
        "properties": {
            "product": finding.product,
            "policy": finding.policy,
            "origin": finding.origin,
            "outcome": str(finding.outcome),
            "blocking": finding.blocking,
            "path": violation.path or None,
        },
    }
    file = violation.file or files.get(finding.product)
    if file is not None:
        physical: dict[str, Any] = {"artifactLocation": _artifact_location(file, base)}
        if violation.line is not None and violation.line >= 1:
            region: dict[str, int] = {"startLine": violation.line}
            if violation.column is not None and violation.column >= 1:
                region["startColumn"] = violation.column
            physical["region"] = region
        result["locations"] = [{"physicalLocation": physical}]
    if finding.outcome == Outcome.WAIVED:
        waiver = finding.waiver or {}
        suppression: dict[str, Any] = {
            "kind": "external",
            "status": "accepted",
            "justification": str(waiver.get("reason") or "waived"),
        }
        extra = {k: str(waiver[k]) for k in ("approver", "expires") if waiver.get(k) is not None}
        if extra:
            suppression["properties"] = extra
        result["suppressions"] = [suppression]
    return result


def _artifact_location(file: Path, base: Path) -> dict[str, str]:
    relative = _relative(file, base)
    if relative is None:  # outside the mesh root: an absolute file URI
        return {"uri": _absolute(file if file.is_absolute() else base / file).as_uri()}
    return {"uri": quote(relative), "uriBaseId": ROOT_BASE_ID}


def _directory_uri(path: Path) -> str:
    uri = path.as_uri()
    return uri if uri.endswith("/") else uri + "/"


# --- writing ----------------------------------------------------------------------------------


def render(
    findings: Sequence[Finding],
    *,
    fmt: ReportFormat,
    root: Path,
    tool_version: str,
    generated_at: datetime,
    product_files: Mapping[str, Path] | None = None,
) -> str:
    """The report as text, in the format asked for."""
    if fmt == "json":
        return _dump(to_json(findings, generated_at=generated_at))
    if fmt == "junit":
        return (
            to_junit(findings, generated_at=generated_at, root=root, product_files=product_files)
            + "\n"
        )
    if fmt == "sarif":
        return _dump(
            to_sarif(findings, tool_version=tool_version, root=root, product_files=product_files)
        )
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_report(
    findings: Sequence[Finding],
    *,
    fmt: ReportFormat,
    path: Path,
    root: Path,
    tool_version: str,
    generated_at: datetime,
    product_files: Mapping[str, Path] | None = None,
) -> None:
    """Write the report to `path` (UTF-8), creating its folder; replaced whole, never half-written."""
    text = render(
        findings,
        fmt=fmt,
        root=root,
        tool_version=tool_version,
        generated_at=generated_at,
        product_files=product_files,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- helpers ----------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry at all, not even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value)


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC, as everywhere in meshkit."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _relative(file: Path, base: Path) -> str | None:
    """`file` relative to `base` in POSIX form, or None when it lies outside.

    A relative `file` is taken relative to `base` (the mesh root)."""
    target = file if file.is_absolute() else base / file
    for a, b in ((_absolute(target), _absolute(base)), (target.resolve(), base.resolve())):
        if a.is_relative_to(b):
            return a.relative_to(b).as_posix()
    return None


def _display_path(file: Path, root: Path | None) -> str:
    relative = _relative(file, root) if root is not None else None
    return relative if relative is not None else str(file)


def _by_product(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.product, []).append(finding)
    return groups


def _product_files(
    findings: Sequence[Finding], given: Mapping[str, Path] | None
) -> dict[str, Path]:
    """Each product's spec file: as given, else as named by one of its violations."""
    files: dict[str, Path] = {}
    for finding in findings:
        for violation in finding.violations:
            if violation.file is not None and violation.file.name == PRODUCT_FILE:
                files.setdefault(finding.product, violation.file)
    files.update(given or {})
    return files
