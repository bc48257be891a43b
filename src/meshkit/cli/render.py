"""How the CLI shows things: Rich tables for people, JSON for scripts. No logic lives here."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from meshkit.builder.runner import BuildResult
from meshkit.errors import MeshkitError, Problem, QualityGateError
from meshkit.governance.findings import Finding

# Piped output (no terminal to measure) gets room for full ids instead of Rich's 80 columns.
_PIPE_WIDTH = None if sys.stdout.isatty() else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPE_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_PIPE_WIDTH)

STATUS_STYLE = {
    "published": "green",
    "up_to_date": "dim green",
    "success": "green",
    "failed": "red",
    "blocked": "red",
    "conflict": "yellow",
    "skipped": "yellow",
    "running": "cyan",
}


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_default) + "\n")


def error(exc: MeshkitError) -> None:
    problems = exc.problems
    if len(problems) == 1 and not problems[0].location():
        (problem,) = problems
        err.print(Text("error: ", style="bold red") + Text(problem.message))
        if problem.hint:
            err.print(Text("  hint: ", style="cyan") + Text(problem.hint))
    else:
        err.print(Text("error: ", style="bold red") + Text(exc.message))
        for problem in problems:
            located(problem)
    for note in getattr(exc, "skipped", []):
        err.print(Text("  not checked: ", style="yellow") + Text(note), style="dim")
    if isinstance(exc, QualityGateError):
        for failure in exc.failures:
            _samples(failure.samples)


def located(problem: Problem, *, label: str = "", style: str = "") -> None:
    """One problem: where (file:line:column path), what, the line with a caret, the fix."""
    line = Text("  ")
    if label:
        line += Text(f"{label}: ", style=style)
    if problem.location():
        line += Text(problem.location(), style="bold") + Text(": ")
    line += Text(problem.message)
    err.print(line)
    if problem.excerpt:
        err.print(Text("\n".join(f"    {line}" for line in problem.excerpt.splitlines())))
    if problem.hint:
        err.print(Text("      hint: ", style="cyan") + Text(problem.hint))


def _samples(samples: Sequence[dict[str, Any]], console: Console = err) -> None:
    if not samples:
        return
    table = Table(title="sample failing rows (PII columns hidden)", title_style="dim")
    for key in samples[0]:
        table.add_column(key, overflow="fold")
    for row in samples:
        table.add_row(*(Text("NULL" if v is None else str(v)) for v in row.values()))
    console.print(table)


def build_results(results: Sequence[BuildResult]) -> None:
    table = Table(title="build results")
    for name in ("product", "status", "version", "rows", "checks", "seconds"):
        table.add_column(
            name, justify="right" if name in ("version", "rows", "seconds") else "left"
        )
    for r in results:
        failed = [c for c in r.checks if not c.passed]
        checks = f"{len(r.checks) - len(failed)}/{len(r.checks)} passed" if r.checks else "-"
        table.add_row(
            r.product_id,
            Text(r.status.replace("_", " "), style=STATUS_STYLE.get(r.status, "")),
            "-" if r.delta_version is None else str(r.delta_version),
            "-" if r.rows is None else f"{r.rows:,}",
            checks,
            f"{sum(r.timings.values()):.2f}",
        )
    out.print(table)
    for r in results:
        for check in r.checks:
            if not check.passed:
                style = "red" if check.blocking else "yellow"
                label = "FAILED" if check.blocking else "warning"
                out.print(
                    Text(f"{label} ", style=style)
                    + Text(f"{r.product_id} {check.name}: {check.message}")
                )
                _samples(check.samples, out)
        if r.error is not None and not isinstance(r.error, QualityGateError):
            error(r.error)


def arrow_table(data: pa.Table, *, title: str | None = None, max_rows: int = 50) -> None:
    table = Table(title=title)
    for name in data.column_names:
        table.add_column(name, overflow="fold")
    for row in data.slice(0, max_rows).to_pylist():
        table.add_row(*(Text("NULL" if v is None else str(v)) for v in row.values()))
    out.print(table)
    if data.num_rows > max_rows:
        out.print(
            Text(
                f"... {data.num_rows - max_rows:,} more rows (use --limit, --json or --csv)",
                style="dim",
            )
        )
    else:
        out.print(Text(f"{data.num_rows:,} row(s)", style="dim"))


def kv_table(rows: Sequence[tuple[str, Any]], *, title: str | None = None) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, Text("" if value is None else str(value)))
    out.print(table)


def records(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name)
            style = STATUS_STYLE.get(str(value), "") if name == "status" else ""
            cells.append(Text("" if value is None else str(value), style=style))
        table.add_row(*cells)
    out.print(table)


OUTCOME_STYLE = {"passed": "green", "failed": "red", "error": "red", "waived": "yellow"}


def policy_table(findings: Sequence[Finding]) -> None:
    """One table per product: rule, enforcement, result, message, fix hint."""
    by_product: dict[str, list[Finding]] = {}
    for finding in findings:
        by_product.setdefault(finding.product, []).append(finding)
    for product, items in by_product.items():
        table = Table(title=product)
        for name in ("policy", "enforcement", "result", "message", "fix"):
            table.add_column(
                name, overflow="fold", no_wrap=name in ("policy", "enforcement", "result")
            )
        for f in items:
            outcome = str(f.outcome)
            style = OUTCOME_STYLE.get(outcome, "")
            if outcome == "failed" and not f.blocking:
                style = "yellow"
            table.add_row(
                f.policy,
                str(f.enforcement),
                Text(outcome, style=style),
                Text(f.message),
                Text(f.hint or ""),
            )
        out.print(table)
    blocking = sum(f.blocking for f in findings)
    warnings = sum(
        str(f.outcome) in ("failed", "error") and str(f.enforcement) == "recommended"
        for f in findings
    )
    out.print(
        f"{len(findings)} policy results: {blocking} blocking, {warnings} warning(s), "
        f"{sum(str(f.outcome) == 'waived' for f in findings)} waived"
    )
    if not findings:
        err.print(
            Text("  hint: ", style="cyan")
            + Text(
                "no policy applies to these products: declare global policies under "
                "governance.policies in mesh.yaml (e.g. pii-masking, ownership, quality-slo), "
                "or domain policies in domain.yaml; docs/governance.md lists the rules"
            )
        )


def policy_warnings(findings: Sequence[Finding]) -> None:
    """A warning per failing `recommended` policy (`optional` ones are only reported)."""
    for f in findings:
        if str(f.outcome) in ("failed", "error") and str(f.enforcement) == "recommended":
            err.print(
                Text(f"warning [{f.policy}, {f.enforcement}] ", style="yellow")
                + Text(f"{f.product}: {f.message}")
            )


def policy_summary(findings: Sequence[Finding]) -> None:
    """Per policy: on how many products it passed, failed (and how it is enforced) or was waived."""
    rows: dict[str, dict[str, Any]] = {}
    for f in findings:
        row = rows.setdefault(
            f.policy,
            {
                "policy": f.policy,
                "enforcement": str(f.enforcement),
                "passed": 0,
                "failed": 0,
                "waived": 0,
            },
        )
        bucket = "failed" if str(f.outcome) in ("failed", "error") else str(f.outcome)
        row[bucket] += 1
    records(
        list(rows.values()),
        ["policy", "enforcement", "passed", "failed", "waived"],
        title="governance",
    )


def listing(rows: list[dict[str, object]], columns: list[str], title: str, as_json: bool) -> None:
    """Rows as JSON for scripts, or as a table of `columns` for people."""
    if as_json:
        print_json(rows)
    else:
        records(rows, columns, title=title)
