"""Policy evaluation for the Workspace: evaluate, record the results, raise on a blocking one.

`governance.evaluate` judges specs and returns findings; this service feeds it the catalog's
last published status of each product (for `lifecycle-transitions`), keeps the lineage memo
for the duration of one evaluation, and stores the results per product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshkit import governance
from meshkit.catalog import PolicyEvaluation
from meshkit.errors import PolicyError, Problem
from meshkit.events import Kind
from meshkit.governance import reports
from meshkit.governance.findings import Finding, Violation
from meshkit.specs import Mesh

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


class Policies:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def check(self, products: Sequence[str] = (), *, record: bool = True) -> list[Finding]:
        """Evaluate the policies that apply to `products` (default all) and store the results.

        Raises PolicyError if a `required` policy fails (after waivers).
        """
        findings = self.evaluate(products, record=record)
        blocking = [f for f in findings if f.blocking]
        if blocking:
            raise policy_error(blocking)
        return findings

    def evaluate(self, products: Sequence[str] = (), *, record: bool = True) -> list[Finding]:
        """Like `check`, but returns blocking findings instead of raising."""
        ws = self.ws
        for pid in products:
            ws.product(pid)
        ids = list(products) or sorted(ws.mesh.products)
        previous = {p.id: p.status for p in ws.catalog.products.find()}
        findings = self.evaluate_in(ws.mesh, ids, previous)
        if ws.events.listens(Kind.POLICY_RESULT):  # one per policy and product: only if heard
            for f in findings:
                ws.events(
                    Kind.POLICY_RESULT,
                    f.product,
                    "meshkit",
                    policy=f.policy,
                    outcome=str(f.outcome),
                    blocking=f.blocking,
                )
        if record:  # the catalog lists every declared product, published or not
            ws.sync.register_new(ws.mesh.products, known=set(previous))
            by_product: dict[str, list[dict[str, Any]]] = {pid: [] for pid in ids}
            for f in findings:
                by_product[f.product].append(f.to_dict())
            ws.catalog.policies.record(
                [
                    PolicyEvaluation(
                        product_id=pid,
                        semver=ws.mesh.products[pid].spec.version,
                        spec_hash=ws.mesh.products[pid].spec_hash,
                        results=results,
                    )
                    for pid, results in by_product.items()
                ],
                evaluated_at=ws.now(),
            )
        return findings

    def evaluate_in(
        self, mesh: Mesh, ids: Sequence[str], previous: dict[str, str] | None = None
    ) -> list[Finding]:
        """The findings of `ids` in `mesh` (which may be one `validate` loaded leniently)."""
        ws = self.ws
        if previous is None:
            previous = {p.id: p.status for p in ws.catalog.products.find()}
        try:
            return governance.evaluate(
                mesh, ids, now=ws.now(), previous_status=previous, lineage=ws.lineage_cache
            )
        finally:
            ws.lineage_cache.save()

    def report(self) -> dict[str, Any]:
        """Compliance per domain and per policy, from the latest stored evaluation of each
        product."""
        return reports.compliance(self.ws.catalog.policies.latest())


def policy_error(findings: Sequence[Finding]) -> PolicyError:
    """One located problem per violation; a mesh-wide violation (in mesh.yaml) is listed once,
    not once per product."""
    problems: list[Problem] = []
    seen: set[tuple[object, ...]] = set()
    for finding in findings:
        for violation in finding.violations or [Violation(finding.message)]:
            key = (finding.policy, violation.file, violation.line, violation.message)
            if key in seen:
                continue
            seen.add(key)
            problems.append(
                Problem(
                    f"[{finding.policy}] {violation.message}",
                    file=violation.file,
                    path=violation.path,
                    line=violation.line,
                    column=violation.column,
                    hint=violation.hint,
                )
            )
    policies = sorted({f.policy for f in findings})
    return PolicyError(problems, sorted({f.product for f in findings}), policies=policies)
