"""Evaluate policies: global ones from mesh.yaml, domain ones from domain.yaml, on each product.

Global standards with local autonomy: a domain adds its own policies (a stricter variant of a
global rule goes under its own name, so the global one keeps applying), and may raise a global
policy's enforcement, but may never loosen it. A failure is waived only by an unexpired waiver approved by a member of the
governance group. A rule that cannot be evaluated counts as failed (fail-closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from meshkit.engines.registry import dialect_of
from meshkit.errors import MeshkitError, Problem
from meshkit.governance import rules
from meshkit.governance.document import downstream_index, product_document
from meshkit.governance.findings import RANK, Finding, Outcome, Violation
from meshkit.governance.lineage import ColumnClass, propagate
from meshkit.specs.mesh import Located, Mesh, Product
from meshkit.specs.policies import PolicySpec
from meshkit.sql.lineage import LineageCache, derive_many
from meshkit.suggest import did_you_mean


@dataclass(frozen=True)
class Policy:
    """A policy as it applies to one domain: the spec, where it was declared, and its params."""

    spec: PolicySpec
    origin: str  # "global" or "domain:<name>"
    declared_in: Located
    params: dict[str, Any]

    @property
    def rule_id(self) -> str:
        return self.spec.rule if self.spec.rule is not None else f"rego:{self.spec.rego}"

    def applies_to(self, product: Product) -> bool:
        scope = self.spec.scope
        return (
            (not scope.domains or product.domain in scope.domains)
            and (not scope.tags or bool(set(scope.tags) & set(product.spec.tags)))
            and (not scope.statuses or product.spec.status in scope.statuses)
        )


def policies_for_domain(mesh: Mesh, domain: str) -> list[Policy]:
    """Global policies (as tightened by the domain) followed by the domain's own."""
    merged: dict[str, Policy] = {}
    for spec in mesh.spec.governance.policies:
        merged[spec.name] = Policy(spec, "global", mesh, dict(spec.params))
    located = mesh.domains.get(domain)
    if located is None:
        return list(merged.values())
    for spec in located.spec.policies:
        base = merged.get(spec.name)
        if base is None:
            merged[spec.name] = Policy(spec, f"domain:{domain}", located, dict(spec.params))
            continue
        if (
            "enforcement" in spec.model_fields_set
            and RANK[spec.enforcement] > RANK[base.spec.enforcement]
        ):
            tightened = base.spec.model_copy(update={"enforcement": spec.enforcement})
            merged[spec.name] = Policy(
                tightened, f"global+domain:{domain}", base.declared_in, base.params
            )
    return list(merged.values())


# ----------------------------------------------------------------- checking the policies


def check_policies(mesh: Mesh, *, now: datetime) -> list[Problem]:
    """Problems in the policy declarations themselves (reported by `meshkit validate`)."""
    problems: list[Problem] = []
    declared: list[tuple[Located, list[str | int], PolicySpec]] = [
        (mesh, ["governance", "policies", i], p)
        for i, p in enumerate(mesh.spec.governance.policies)
    ]
    globals_by_name = {p.name: p for p in mesh.spec.governance.policies}
    for domain in mesh.domains.values():
        for i, spec in enumerate(domain.spec.policies):
            loc: list[str | int] = ["policies", i]
            declared.append((domain, loc, spec))
            base = globals_by_name.get(spec.name)
            if base is None:
                continue
            if spec.rule != base.rule or spec.rego != base.rego:
                problems.append(
                    domain.problem(
                        f"policy '{spec.name}' is a global policy running {base.rule or base.rego}; "
                        "a domain can make it stricter but not swap its rule",
                        [*loc, "rule"],
                        hint="give the domain policy its own name",
                    )
                )
            if (
                "enforcement" in spec.model_fields_set
                and RANK[spec.enforcement] < RANK[base.enforcement]
            ):
                problems.append(
                    domain.problem(
                        f"domain '{domain.name}' cannot loosen global policy '{spec.name}' from "
                        f"{base.enforcement} to {spec.enforcement}",
                        [*loc, "enforcement"],
                        hint=f"keep enforcement: {base.enforcement} (or stricter), or ask the "
                        "governance group for a waiver on specific products",
                    )
                )
            for key in sorted(spec.model_fields_set - {"name", "rule", "rego", "enforcement"}):
                problems.append(
                    domain.problem(
                        f"domain '{domain.name}' redeclares global policy '{spec.name}' with "
                        f"'{key}'; a domain may only raise a global policy's enforcement",
                        [*loc, key],
                        hint="for stricter parameters or a narrower scope, declare a policy with its "
                        "own name: the global one keeps applying, so nothing gets looser",
                    )
                )
    for located, loc, spec in declared:
        problems.extend(_check_rule(mesh, located, loc, spec))
        for j, name in enumerate(spec.scope.domains):
            if name not in mesh.domains:
                guess = did_you_mean(name, list(mesh.domains))
                problems.append(
                    located.problem(
                        f"scope names unknown domain '{name}'",
                        [*loc, "scope", "domains", j],
                        hint=f"did you mean '{guess}'?"
                        if guess
                        else f"domains: {', '.join(sorted(mesh.domains))}",
                    )
                )
    known = {p.name for p in mesh.spec.governance.policies} | {
        p.name for d in mesh.domains.values() for p in d.spec.policies
    }
    group = set(mesh.spec.governance.group)
    for product in mesh.products.values():
        for i, waiver in enumerate(product.spec.waivers):
            if waiver.policy not in known:
                guess = did_you_mean(waiver.policy, sorted(known))
                problems.append(
                    product.problem(
                        f"waiver names unknown policy '{waiver.policy}'",
                        ["waivers", i, "policy"],
                        hint=f"did you mean '{guess}'?"
                        if guess
                        else f"policies: {', '.join(sorted(known)) or 'none'}",
                    )
                )
            if waiver.approver not in group:
                problems.append(
                    product.problem(
                        f"waiver approver '{waiver.approver}' is not in the governance group",
                        ["waivers", i, "approver"],
                        hint="only members of governance.group in mesh.yaml may approve waivers",
                    )
                )
    return problems


def _check_rule(
    mesh: Mesh, located: Located, loc: list[str | int], spec: PolicySpec
) -> list[Problem]:
    if spec.rego is not None:
        file = located.file.parent / spec.rego
        if not file.is_file():
            return [
                located.problem(
                    f"Rego file '{spec.rego}' does not exist",
                    [*loc, "rego"],
                    hint=f"looked for {file}",
                )
            ]
        try:
            _rego(file)
        except MeshkitError as err:
            return [located.problem(err.message, [*loc, "rego"], hint=err.hint)]
        return []
    assert spec.rule is not None
    if spec.rule.startswith("plugin:"):
        try:
            _plugin(spec.rule.removeprefix("plugin:"))
        except MeshkitError as err:
            return [located.problem(err.message, [*loc, "rule"], hint=err.hint)]
        return []
    builtin = rules.RULES.get(spec.rule)
    if builtin is None:
        guess = did_you_mean(spec.rule, list(rules.RULES))
        return [
            located.problem(
                f"unknown rule '{spec.rule}'",
                [*loc, "rule"],
                hint=f"did you mean '{guess}'?"
                if guess
                else f"built-in rules: {', '.join(sorted(rules.RULES))}; "
                "or 'plugin:<name>', or use 'rego:'",
            )
        ]
    try:
        builtin.params.model_validate(spec.params)
    except ValidationError as err:
        out = []
        for detail in err.errors(include_url=False):
            key = [str(p) for p in detail["loc"]]
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                allowed = sorted(builtin.params.model_fields)
                guess = did_you_mean(key[0], allowed)
                out.append(
                    located.problem(
                        f"rule '{spec.rule}' has no parameter '{key[0]}'",
                        [*loc, "params", *key],
                        hint=f"did you mean '{guess}'?"
                        if guess
                        else f"its parameters: {', '.join(allowed) or 'none'}",
                    )
                )
            else:
                out.append(
                    located.problem(f"parameter {'.'.join(key)}: {message}", [*loc, "params", *key])
                )
        return out
    return []


_REGO_CACHE: dict[Path, Any] = {}


def clear_caches() -> None:
    """Forget compiled Rego files (benchmarks measure cold runs; derived lineage lives in the
    `LineageCache` a caller passes, and goes with it)."""
    _REGO_CACHE.clear()


def _rego(file: Path) -> Any:
    from meshkit.governance.rego import RegoPolicy

    stamp = (file.resolve(), file.stat().st_mtime_ns)
    cached = _REGO_CACHE.get(stamp[0])
    if cached is not None and cached[0] == stamp[1]:
        return cached[1]
    policy = RegoPolicy.load(file)
    _REGO_CACHE[stamp[0]] = (stamp[1], policy)
    return policy


def _plugin(name: str) -> Any:
    from meshkit.governance.plugins import load_plugin

    return load_plugin(name)


# --------------------------------------------------------------------------- evaluation


def column_classes(
    mesh: Mesh, product: Product, *, lineage: LineageCache | None = None
) -> dict[str, ColumnClass]:
    """Each column's classification after lineage: declared, or inherited from upstream
    products (lineage read in the dialect of the mesh's engine, remembered in `lineage`)."""
    if not product.upstream():  # file and database inputs carry no classification to inherit
        return {
            c.name: ColumnClass(product.classification_of(c), c.pii, (), False)
            for c in product.spec.schema_.columns
        }
    upstream = {
        p.product: mesh.products[p.product]
        for p in product.spec.inputs
        if p.product in mesh.products
    }
    return propagate(
        product, upstream, dialect=dialect_of(mesh.spec.settings.engine), cache=lineage
    )


def evaluate(
    mesh: Mesh,
    products: Iterable[str],
    *,
    now: datetime,
    previous_status: Mapping[str, str] | None = None,
    lineage: LineageCache | None = None,
) -> list[Finding]:
    """Every applicable policy on every named product; failures waived where a waiver holds.
    Derived lineage is remembered in `lineage` (a cache for this evaluation when None)."""
    previous = previous_status or {}
    ids = list(products)
    lineage = lineage if lineage is not None else LineageCache()
    _derive_lineage_ahead(mesh, ids, lineage)
    sources = rules.raw_sources(mesh)
    consumers = downstream_index(mesh)
    params_of: dict[tuple[str, str], Any] = {}
    by_domain: dict[str, list[Policy]] = {}
    findings: list[Finding] = []
    for pid in ids:
        product = mesh.products[pid]
        policies = by_domain.setdefault(product.domain, policies_for_domain(mesh, product.domain))
        applicable = [p for p in policies if p.applies_to(product)]
        if not applicable:
            continue
        try:
            columns = column_classes(mesh, product, lineage=lineage)
            lineage_error: MeshkitError | None = None
        except MeshkitError as err:  # lineage cannot be derived: rules needing it fail closed
            columns, lineage_error = {}, err
        document: dict[str, Any] | None = None
        for policy in applicable:
            if policy.spec.rule is not None and policy.spec.rule in rules.RULES:
                builtin = rules.RULES[policy.spec.rule]
                if lineage_error is not None and builtin.id == "pii-masking":
                    finding = _errored(product, policy, lineage_error)
                else:
                    key = (policy.spec.name, policy.origin)
                    if key not in params_of:  # validated once per policy, not per product
                        params_of[key] = builtin.params.model_validate(policy.params)
                    ctx = rules.Context(
                        mesh=mesh,
                        product=product,
                        params=params_of[key],
                        columns=columns,
                        previous_status=previous.get(pid),
                        raw_sources=sources,
                        lineage=lineage,
                    )
                    finding = _finding(product, policy, list(builtin.check(ctx)))
            elif lineage_error is not None:  # its document would hide inherited PII: fail closed
                finding = _errored(product, policy, lineage_error)
            else:
                if document is None:
                    document = product_document(
                        mesh,
                        product,
                        columns=columns,
                        previous_status=previous.get(pid),
                        downstream=consumers,
                    )
                finding = _custom(product, policy, {**document, "params": policy.params})
            findings.append(_waive(product, finding, now))
    return findings


def _derive_lineage_ahead(mesh: Mesh, ids: list[str], cache: LineageCache) -> None:
    """Derive the column lineage of many SQL transforms on every core before the rules run."""
    import os

    from meshkit.governance import lineage

    jobs = []
    for pid in ids:
        product = mesh.products[pid]
        if product.spec.transform.python is not None or not product.upstream():
            continue  # matched by name, or reads only files/databases: nothing to inherit
        upstream = {u: mesh.products[u] for u in product.upstream() if u in mesh.products}
        try:
            jobs.append(lineage.lineage_job(product, upstream))
        except MeshkitError:
            continue
    dialect = dialect_of(mesh.spec.settings.engine)
    derive_many(jobs, dialect=dialect, workers=os.cpu_count() or 1, cache=cache)


def _finding(product: Product, policy: Policy, violations: list[Violation]) -> Finding:
    description = policy.spec.description or (
        rules.RULES[policy.spec.rule].description if policy.spec.rule in rules.RULES else ""
    )
    return Finding(
        product=product.id,
        policy=policy.spec.name,
        rule=policy.rule_id,
        enforcement=policy.spec.enforcement,
        origin=policy.origin,
        outcome=Outcome.FAILED if violations else Outcome.PASSED,
        violations=violations,
        description=description,
    )


def _errored(product: Product, policy: Policy, error: MeshkitError) -> Finding:
    finding = _finding(product, policy, [])
    finding.outcome = Outcome.ERROR
    finding.violations = [
        Violation(
            f"could not be evaluated, so it counts as failed: {error.message}",
            hint=error.hint or "fix the error above; policies fail closed",
            file=product.file,
        )
    ]
    return finding


def _custom(product: Product, policy: Policy, document: dict[str, Any]) -> Finding:
    try:
        if policy.spec.rego is not None:
            violations = _rego(policy.declared_in.file.parent / policy.spec.rego).evaluate(document)
        else:
            assert policy.spec.rule is not None
            plugin = _plugin(policy.spec.rule.removeprefix("plugin:"))
            violations = [
                v if isinstance(v, Violation) else Violation(str(v))
                for v in plugin.check(document, policy.params)
            ]
    except MeshkitError as err:
        return _errored(product, policy, err)
    located = [
        v
        if v.line is not None or not v.path
        else Violation(v.message, v.path, v.hint, product.file, *_line_of(product, v.path))
        for v in violations
    ]
    return _finding(product, policy, located)


def _line_of(product: Product, path: str) -> tuple[int | None, int | None]:
    """`schema.columns[2].pii` -> the line/column of that key in the product's file."""
    import re

    loc: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    problem = product.problem("", loc)
    return problem.line, problem.column


def _waive(product: Product, finding: Finding, now: datetime) -> Finding:
    if finding.outcome not in (Outcome.FAILED, Outcome.ERROR):
        return finding
    # `expires` is the last day the waiver applies, in UTC: compare with today's UTC date
    today = (now.astimezone(UTC) if now.tzinfo is not None else now).date()
    for i, waiver in enumerate(product.spec.waivers):
        if waiver.policy != finding.policy:
            continue
        if waiver.expires >= today:
            finding.outcome = Outcome.WAIVED
            finding.waiver = waiver.model_dump(mode="json")
            return finding
        problem = product.problem("", ["waivers", i, "expires"])
        finding.violations.append(
            Violation(
                f"the waiver for '{waiver.policy}' expired on {waiver.expires}",
                path=problem.path,
                hint="fix the violations above, or have the governance group renew the waiver",
                file=product.file,
                line=problem.line,
                column=problem.column,
            )
        )
    return finding
