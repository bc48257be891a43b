"""`validate`: every check that can run without data, all in one pass.

Each spec, the references between them, each sound product's SQL bound over typed empty
inputs against its contract, and the policies of the sound products. Every problem found is
reported at once, with what could not be checked because of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from meshkit import governance
from meshkit.builder.binding import bind_product
from meshkit.errors import Problem, SpecError
from meshkit.governance.findings import Finding
from meshkit.specs import Product
from meshkit.specs.loader import LoadedSpecs, load_specs, sorted_problems
from meshkit.workspace.policies import policy_error

if TYPE_CHECKING:
    from meshkit.workspace.facade import Workspace


@dataclass
class ValidationReport:
    products: int
    domains: int
    notes: list[str] = field(default_factory=list)
    """What was not checked, and why (a Python transform, a database input, ...)."""
    warnings: list[Problem] = field(default_factory=list)
    """Located problems that do not make the specs invalid (an input's files not there yet)."""
    findings: list[Finding] = field(default_factory=list)


class Validation:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def validate(self, *, policies: bool = True) -> ValidationReport:
        """Raises SpecError with every problem, and what could not be checked because of
        them; or PolicyError when only policies fail."""
        ws = self.ws
        loaded = load_specs(ws.root)
        mesh = loaded.mesh
        if mesh is None:
            raise SpecError(loaded.problems, skipped=loaded.skipped)
        problems, skipped = list(loaded.problems), list(loaded.skipped)
        if not loaded.mesh_degraded:
            problems.extend(governance.check_policies(mesh, now=ws.now()))
        report = ValidationReport(products=len(mesh.products), domains=len(mesh.domains))
        if not loaded.mesh_degraded:
            ws.use_settings(mesh.spec.settings)
        engine = ws.new_engine(mesh.spec.settings)
        for product in [*mesh.products.values(), *loaded.degraded.values()]:
            if any(_about_sql(product, p) for p in problems):
                skipped.append(
                    f"{product.id}: SQL not bound against the contract, because its inputs, "
                    "transform or schema have the errors above"
                )
                continue
            bound = bind_product(mesh, product, engine)
            problems.extend(bound.problems)
            report.warnings.extend(bound.warnings)
            report.notes.extend(bound.skipped)
        if not problems:
            ws.use_mesh(mesh)  # what `ws.mesh` would load and check again
            if policies:
                report.findings = ws.check_policies()
            return report
        skipped.extend(report.notes)
        if policies:
            problems.extend(self._policy_problems(loaded, problems, skipped))
        raise SpecError(sorted_problems(problems), skipped=skipped)

    def _policy_problems(
        self, loaded: LoadedSpecs, problems: list[Problem], skipped: list[str]
    ) -> list[Problem]:
        """Blocking policy violations of the products that are sound, and whose inputs and
        domain are; the others' policies are said to be skipped (classification and PII flow
        from upstream products, and domains add policies)."""
        mesh = loaded.mesh
        assert mesh is not None
        if loaded.mesh_degraded:
            skipped.append("policies: not evaluated, because mesh.yaml has errors")
            return []
        files = {p.file for p in problems}
        sick = set(loaded.unloaded) | {
            pid
            for pid, p in mesh.products.items()
            if p.file in files or p.transform_file in files or p.domain in loaded.bad_domains
        }
        grew = True
        while grew:  # downstream of a sick product inherits its doubt
            more = {pid for pid, p in mesh.products.items() if sick.intersection(p.upstream())}
            grew = not more <= sick
            sick |= more
        sound = [pid for pid in sorted(mesh.products) if pid not in sick]
        doubtful = sorted(sick)
        if doubtful:
            skipped.append(
                f"policies of {', '.join(doubtful)}: not evaluated, because their specs (or their "
                "inputs' or domain's) have errors"
            )
        if not sound:
            return []
        findings = self.ws.policies.evaluate_in(mesh, sound)
        blocking = [f for f in findings if f.blocking]
        return policy_error(blocking).problems if blocking else []


def _about_sql(product: Product, problem: Problem) -> bool:
    """Whether `problem` makes binding `product`'s SQL pointless: it is in its SQL file, or in
    the inputs, transform or schema of its spec."""
    if problem.file is not None and problem.file == product.transform_file:
        return True
    return problem.file == product.file and problem.path.split(".")[0].split("[")[0] in (
        "inputs",
        "transform",
        "schema",
    )
