"""The malformed-spec suite: every way a spec can be wrong gets a precise, located message.

Each case starts from the valid test mesh (conftest.py), applies one edit, and expects the
problems listed: file, YAML path, line and column exactly, the key words of the message and of
the hint. The same case then runs through the real CLI, which must exit 2 and print the
location, never a traceback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from meshkit.errors import Problem, SpecError
from meshkit.specs import load_mesh
from meshkit.workspace import Workspace

MESH = "mesh.yaml"
SALES = "domains/sales/domain.yaml"
ANALYTICS = "domains/analytics/domain.yaml"
ORDERS = "domains/sales/products/orders/dataproduct.yaml"
ORDERS_SQL = "domains/sales/products/orders/transform.sql"
DAILY = "domains/sales/products/daily_revenue/dataproduct.yaml"
DAILY_SQL = "domains/sales/products/daily_revenue/transform.sql"
SUMMARY = "domains/analytics/products/revenue_summary/dataproduct.yaml"
SUMMARY_PY = "domains/analytics/products/revenue_summary/transform.py"

Edit = Callable[[Path], None]
RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture


def replace(file: str, old: str, new: str) -> Edit:
    """Replace the one occurrence of `old` in `file` (relative to the mesh root)."""

    def edit(root: Path) -> None:
        path = root / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur exactly once in {file}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return edit


def write(file: str, text: str) -> Edit:
    def edit(root: Path) -> None:
        (root / file).write_text(text, encoding="utf-8")

    return edit


def combine(*edits: Edit) -> Edit:
    def edit(root: Path) -> None:
        for one in edits:
            one(root)

    return edit


@dataclass(frozen=True)
class Expect:
    """One problem the edit must produce."""

    file: str
    path: str
    line: int
    column: int
    words: tuple[str, ...]
    hint: str | None = None  # a substring of the hint; None: no hint is required


@dataclass(frozen=True)
class Case:
    id: str
    edit: Edit
    expect: tuple[Expect, ...]
    # "load": load_mesh rejects it; "contract": the specs load, Workspace.validate rejects the
    # transform's output (bound by DuckDB) against the declared schema
    stage: Literal["load", "contract"] = "load"


def case(
    id: str,
    edit: Edit,
    at: tuple[str, str, int, int],
    words: tuple[str, ...],
    hint: str | None = None,
    *,
    stage: Literal["load", "contract"] = "load",
) -> Case:
    """One expected problem `at` (file, YAML path, line, column)."""
    return Case(id, edit, (Expect(*at, words, hint),), stage)


CASES = [
    # ------------------------------------------------------------------ YAML syntax
    case(
        "yaml-bad-indentation",
        replace(ORDERS, "  business: bob@example.com", "   business: bob@example.com"),
        (ORDERS, "", 11, 12),
        ("invalid YAML", "mapping values are not allowed"),
        "indented deeper",
    ),
    case(
        "yaml-tab-indentation",
        replace(ORDERS, "  business: bob", "\tbusiness: bob"),
        (ORDERS, "", 11, 1),
        ("invalid YAML", "tab character"),
        "use spaces",
    ),
    case(
        # the parser only notices at the next quote (line 54): point at the opening one
        "yaml-unclosed-quote",
        replace(ORDERS, "description: One row", 'description: "One row'),
        (ORDERS, "", 7, 14),
        ("invalid YAML", "quote opened here is not closed", "line 54"),
        "closing quote",
    ),
    case(
        "yaml-unclosed-quote-at-end",
        replace(ANALYTICS, "owner: analytics-team", "owner: 'analytics-team"),
        (ANALYTICS, "", 6, 8),
        ("invalid YAML", "quote opened here is never closed"),
        "closing quote",
    ),
    case(
        "yaml-unclosed-bracket",
        replace(ORDERS, "tags: [sales, orders]", "tags: [sales, orders"),
        (ORDERS, "", 8, 7),
        ("invalid YAML", "'[' opened here is not closed", "line 9, column 6"),
        "close it with ']'",
    ),
    case(
        "yaml-duplicate-key",
        replace(ORDERS, "status: active\n", "status: active\nversion: 1.0.1\n"),
        (ORDERS, "", 7, 1),
        ("invalid YAML", "duplicate key", "version"),
        "may appear once",
    ),
    case(
        "empty-file",
        write(SALES, ""),
        (SALES, "", 1, 1),
        ("expected a mapping", "empty file"),
        "kind: Domain",
    ),
    case(
        "file-is-a-list",
        write(SALES, "- name: sales\n- type: aggregate\n"),
        (SALES, "", 1, 1),
        ("expected a mapping", "a list"),
        "apiVersion: meshkit/v1",
    ),
    # ------------------------------------------------------------ header and keys
    case(
        "wrong-kind",
        replace(SALES, "kind: Domain", "kind: DataProduct"),
        (SALES, "kind", 2, 1),
        ("kind 'Domain'", "'DataProduct'"),
        "domain.yaml holds a Domain",
    ),
    case(
        "wrong-api-version",
        replace(ORDERS, "apiVersion: meshkit/v1", "apiVersion: meshkit/v2"),
        (ORDERS, "apiVersion", 1, 1),
        ("invalid value", "'meshkit/v2'", "apiVersion"),
        "did you mean 'meshkit/v1'?",
    ),
    case(
        # reported once, as an unknown key: not also as "missing required key 'owner'"
        "unknown-key-ownr",
        replace(ORDERS, "owner:\n", "ownr:\n"),
        (ORDERS, "ownr", 9, 1),
        ("unknown key 'ownr'",),
        "did you mean 'owner'?",
    ),
    case(
        "unknown-nested-key-nulable",
        replace(ORDERS, "      nullable: false", "      nulable: false"),
        (ORDERS, "schema.columns[0].nulable", 22, 7),
        ("unknown key 'nulable'",),
        "did you mean 'nullable'?",
    ),
    case(
        "unknown-key-in-mesh-settings",
        replace(MESH, "  warehouse: warehouse", "  warehous: warehouse"),
        (MESH, "settings.warehous", 6, 3),
        ("unknown key 'warehous'",),
        "did you mean 'warehouse'?",
    ),
    # ------------------------------------------------------------------ wrong types
    case(
        "string-for-bool",
        replace(ORDERS, "      pii: true", "      pii: maybe"),
        (ORDERS, "schema.columns[4].pii", 32, 7),
        ("'pii'", "true or false", "'maybe'"),
        "true or false",
    ),
    case(
        "list-for-mapping",
        replace(
            ORDERS,
            "owner:\n  technical: alice@example.com\n  business: bob@example.com\n",
            "owner: [alice@example.com, bob@example.com]\n",
        ),
        (ORDERS, "owner", 9, 1),
        ("'owner'", "must be a mapping", "got list"),
        "key: value",
    ),
    case(
        "number-for-version",
        replace(ORDERS, "version: 1.0.0", "version: 1.0"),
        (ORDERS, "version", 5, 1),
        ("'version'", "must be text", "got float: 1.0"),
        'quote it and give three numbers, e.g. version: "1.0.0"',
    ),
    case(
        "number-for-text",
        replace(ORDERS, "description: One row per order placed in the shop.", "description: 42"),
        (ORDERS, "description", 7, 1),
        ("'description'", "must be text", "got int: 42"),
        'quote it: description: "42"',
    ),
    # ---------------------------------------------------------------- missing keys
    case(
        "missing-description",
        replace(ORDERS, "description: One row per order placed in the shop.\n", ""),
        (ORDERS, "description", 1, 1),
        ("missing required key 'description'",),
        "add 'description:'",
    ),
    case(
        "missing-owner-business",
        replace(ORDERS, "  business: bob@example.com\n", ""),
        (ORDERS, "owner.business", 9, 1),
        ("missing required key 'business'",),
        "add 'business:'",
    ),
    case(
        "empty-owner-business",
        replace(ORDERS, "  business: bob@example.com", "  business: ''"),
        (ORDERS, "owner.business", 11, 3),
        ("'business'", "must not be empty"),
        "write some text",
    ),
    case(
        "no-inputs",
        replace(
            ORDERS, "inputs:\n  - name: raw_orders\n    file: data/orders.parquet\n", "inputs: []\n"
        ),
        (ORDERS, "inputs", 13, 1),
        ("'inputs'", "at least 1 entry"),
        "add at least one entry",
    ),
    # ------------------------------------------------------- enums and patterns
    case(
        "invalid-status-actve",
        replace(ORDERS, "status: active", "status: actve"),
        (ORDERS, "status", 6, 1),
        ("invalid value 'actve'", "'status'"),
        "did you mean 'active'?",
    ),
    case(
        "invalid-classification-secret",
        replace(ORDERS, "classification: internal", "classification: secret"),
        (ORDERS, "classification", 12, 1),
        ("invalid value 'secret'", "'classification'"),
        "'public', 'internal', 'confidential' or 'restricted'",
    ),
    case(
        "invalid-domain-type",
        replace(SALES, "type: source-aligned", "type: source"),
        (SALES, "type", 5, 1),
        ("invalid value 'source'", "'type'"),
        "did you mean 'source-aligned'?",
    ),
    case(
        "bad-product-name",
        replace(ORDERS, "name: orders", "name: Orders-v2"),
        (ORDERS, "name", 3, 1),
        ("invalid value 'Orders-v2'", "'name'"),
        "lower_snake_case",
    ),
    case(
        "bad-semver",
        replace(ORDERS, "version: 1.0.0", "version: v1.0"),
        (ORDERS, "version", 5, 1),
        ("invalid value 'v1.0'", "'version'"),
        "semantic version such as 1.0.0",
    ),
    # -------------------------------------------------------------------- schema
    case(
        "unknown-sql-type-integr",
        replace(ORDERS, "type: BIGINT\n    - name: amount", "type: integr\n    - name: amount"),
        (ORDERS, "schema.columns[1].type", 25, 7),
        ("'integr' is not a SQL type",),
        "did you mean 'integer'?",
    ),
    case(
        # points at the second declaration, and says where the first one is
        "duplicate-column",
        replace(ORDERS, "    - name: email", "    - name: status"),
        (ORDERS, "schema.columns[4].name", 30, 7),
        ("column 'status' is declared twice",),
        "first declared on line 28",
    ),
    case(
        "duplicate-input-port",
        replace(DAILY, "transform:", "  - name: orders\n    file: data/orders.parquet\ntransform:"),
        (DAILY, "inputs[1].name", 12, 5),
        ("input port 'orders' is declared twice",),
        "first declared on line 10",
    ),
    # ------------------------------------------------------------ quality checks
    case(
        "unknown-check-type",
        replace(ORDERS, "type: unique", "type: uniqe"),
        (ORDERS, "quality[3].type", 45, 5),
        ("unknown check type 'uniqe'",),
        "did you mean 'unique'?",
    ),
    case(
        "check-on-unknown-column",
        replace(ORDERS, "column: customer_id", "column: customer"),
        (ORDERS, "quality[1].column", 40, 5),
        ("column 'customer' is not in the schema",),
        "did you mean 'customer_id'?",
    ),
    case(
        "row-count-min-greater-than-max",
        replace(ORDERS, "min: 1\n    max: 1000", "min: 10\n    max: 5"),
        (ORDERS, "quality[0]", 36, 5),
        ("min (10) is greater than max (5)",),
    ),
    case(
        "null-fraction-above-1",
        replace(ORDERS, "max: 0.1", "max: 1.5"),
        (ORDERS, "quality[1].max", 41, 5),
        ("'max'", "at most 1", "got 1.5"),
        "fraction of NULLs",
    ),
    case(
        "bad-regex",
        replace(ORDERS, "pattern: '^[^@]+@[^@]+$'", "pattern: '^[^@+@example$'"),
        (ORDERS, "quality[2].pattern", 44, 5),
        ("invalid regular expression", "missing ]"),
        "RE2",
    ),
    case(
        # valid in Python's re, not in RE2 (which DuckDB uses)
        "regex-not-re2",
        replace(ORDERS, "pattern: '^[^@]+@[^@]+$'", "pattern: '(?<=@)example'"),
        (ORDERS, "quality[2].pattern", 44, 5),
        ("invalid regular expression", "(?<"),
        "RE2",
    ),
    case(
        "bad-duration-soon",
        replace(ORDERS, "max_age: 7d", "max_age: soon"),
        (ORDERS, "quality[4].max_age", 49, 5),
        ("'soon' is not a duration",),
        "30m, 6h, 7d or 2w",
    ),
    # -------------------------------------------------------------- scheduling
    case(
        "bad-cron",
        replace(ORDERS, 'cron: "0 6 * * *"', 'cron: "0 25 * * *"'),
        (ORDERS, "schedule.cron", 54, 3),
        ("invalid cron expression", "'0 25 * * *'"),
        "five fields",
    ),
    case(
        "bad-timezone",
        replace(ORDERS, "timezone: Europe/Berlin", "timezone: Europe/Berln"),
        (ORDERS, "schedule.timezone", 55, 3),
        ("unknown time zone", "'Europe/Berln'"),
        "IANA name",
    ),
    # ---------------------------------------------------------------- references
    case(
        "unknown-product-reference",
        replace(SUMMARY, "product: sales.daily_revenue", "product: sales.daily_revenu"),
        (SUMMARY, "inputs[0].product", 11, 5),
        ("input 'daily'", "unknown product 'sales.daily_revenu'"),
        "did you mean 'sales.daily_revenue'?",
    ),
    case(
        # reported once, not also as a one-product cycle
        "self-reference",
        replace(DAILY, "product: sales.orders", "product: sales.daily_revenue"),
        (DAILY, "inputs[0].product", 11, 5),
        ("input 'orders'", "refers to the product itself"),
        "cannot read its own output",
    ),
    case(
        "three-product-cycle",
        replace(
            ORDERS,
            "    file: data/orders.parquet\n",
            "    file: data/orders.parquet\n  - name: summary\n    product: analytics.revenue_summary\n",
        ),
        (ORDERS, "inputs[1].product", 17, 5),
        (
            "dependency cycle: analytics.revenue_summary <- sales.daily_revenue <- sales.orders "
            "<- analytics.revenue_summary",
        ),
        "break the cycle",
    ),
    case(
        "input-with-file-and-product",
        replace(
            ORDERS,
            "    file: data/orders.parquet\n",
            "    file: data/orders.parquet\n    product: sales.daily_revenue\n",
        ),
        (ORDERS, "inputs[0]", 14, 5),
        ("exactly one of 'file', 'product' or 'database'", "got file, product"),
        "one source per port",
    ),
    # ------------------------------------------------------------------ transform
    case(
        "transform-file-missing",
        replace(ORDERS, "sql: transform.sql", "sql: transfrom.sql"),
        (ORDERS, "transform.sql", 17, 3),
        ("transform file 'transfrom.sql' does not exist",),
        "did you mean 'transform.sql'?",
    ),
    case(
        # DuckDB's parser decides (sqlglot alone would accept the double comma)
        "sql-syntax-error",
        replace(ORDERS_SQL, "    amount,\n", "    amount,,\n"),
        (ORDERS_SQL, "", 5, 12),
        ("SQL does not parse", 'syntax error at or near ","'),
        "DuckDB SQL",
    ),
    case(
        "sql-reads-unknown-table",
        replace(ORDERS_SQL, "FROM raw_orders", "FROM raw_order"),
        (ORDERS_SQL, "", 9, 6),
        ("SQL reads table 'raw_order'", "not an input port"),
        "did you mean 'raw_orders'?",
    ),
    case(
        "sql-column-not-in-schema",
        replace(
            DAILY_SQL,
            "    SUM(amount) AS revenue\n",
            "    SUM(amount) AS revenue,\n    COUNT(*) AS orders\n",
        ),
        (DAILY, "schema.columns", 15, 3),
        ("outputs column 'orders'", "schema does not declare"),
        "declare 'orders' under schema.columns",
        stage="contract",
    ),
    case(
        "declared-column-not-produced",
        replace(ORDERS_SQL, "    email,\n", ""),
        (ORDERS, "schema.columns[4]", 30, 7),
        ("declared column 'email' is not produced",),
        "add it to the SELECT",
        stage="contract",
    ),
    case(
        "sql-type-differs-from-schema",
        replace(ORDERS_SQL, "    status,\n", "    42 AS status,\n"),
        (ORDERS, "schema.columns[3]", 28, 7),
        ("column 'status' is INTEGER", "contract says VARCHAR"),
        "CAST(status AS VARCHAR) AS status",
        stage="contract",
    ),
    case(
        "python-function-not-defined",
        combine(
            replace(SUMMARY, "sql: transform.sql", "python: transform.py:summarize"),
            write(SUMMARY_PY, "def summarise(daily):\n    return daily\n"),
        ),
        (SUMMARY, "transform.python", 13, 3),
        ("function 'summarize' is not defined",),
        "did you mean 'summarise'?",
    ),
    # ------------------------------------------------------------------- folders
    case(
        "domain-folder-mismatch",
        replace(SALES, "name: sales", "name: sale"),
        (SALES, "name", 3, 1),
        ("domain name 'sale' differs from its folder 'sales'",),
        "set name: sales",
    ),
    case(
        # and sales.daily_revenue, which reads sales.orders, gets no "unknown product" echo
        "product-folder-mismatch",
        replace(ORDERS, "name: orders", "name: order"),
        (ORDERS, "name", 3, 1),
        ("product name 'order' differs from its folder 'orders'",),
        "set name: orders",
    ),
    case(
        "product-domain-mismatch",
        replace(ORDERS, "domain: sales", "domain: analytics"),
        (ORDERS, "domain", 4, 1),
        ("product says domain 'analytics'", "domains/sales/"),
        "fix 'domain'",
    ),
    Case(
        "two-domains-with-errors",
        combine(
            replace(SALES, "type: source-aligned", "type: source"),
            replace(ANALYTICS, "owner: analytics-team\n", ""),
        ),
        (
            Expect(ANALYTICS, "owner", 1, 1, ("missing required key 'owner'",), "add 'owner:'"),
            Expect(SALES, "type", 5, 1, ("invalid value 'source'",), "'source-aligned'"),
        ),
    ),
]


def _show(problems: list[Problem], root: Path) -> str:
    return "\n".join(
        f"  {p.file.relative_to(root) if p.file else None}:{p.line}:{p.column} "
        f"[{p.path}] {p.message} (hint: {p.hint})"
        for p in problems
    )


def _spec_error(case: Case, root: Path) -> SpecError:
    if case.stage == "load":
        with pytest.raises(SpecError) as loaded:
            load_mesh(root)
        # the CLI path raises the same problems
        with pytest.raises(SpecError) as validated:
            Workspace(root).validate()
        assert validated.value.problems == loaded.value.problems
        return loaded.value
    load_mesh(root)  # the specs themselves are fine
    with pytest.raises(SpecError) as validated:
        Workspace(root).validate()
    return validated.value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_is_located(case: Case, mesh_root: Path) -> None:
    case.edit(mesh_root)
    root = mesh_root.resolve()
    problems = _spec_error(case, root).problems
    listing = _show(problems, root)
    # exactly the expected problems: no echo of the same mistake elsewhere
    assert len(problems) == len(case.expect), f"expected {len(case.expect)}, got:\n{listing}"
    for expect in case.expect:
        at = [
            p
            for p in problems
            if p.file == root / expect.file and (p.line, p.column) == (expect.line, expect.column)
        ]
        assert len(at) == 1, (
            f"no problem at {expect.file}:{expect.line}:{expect.column}; got:\n{listing}"
        )
        problem = at[0]
        assert problem.path == expect.path, listing
        for word in expect.words:
            assert word in problem.message, f"{word!r} not in {problem.message!r}"
        if expect.hint is not None:
            assert problem.hint is not None, f"no hint for {problem.message!r}"
            assert expect.hint in problem.hint, f"{expect.hint!r} not in {problem.hint!r}"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_exits_2_with_location(case: Case, mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    case.edit(mesh_root)
    root = mesh_root.resolve()
    result = run_meshkit("validate", "--mesh", str(root))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    for expect in case.expect:
        assert f"{root / expect.file}:{expect.line}:{expect.column}" in result.stderr, result.stderr
        assert expect.words[0] in result.stderr


# --------------------------------------------------------------- all at once


def _several_errors() -> Edit:
    return combine(
        # three problems in one file: each reported, in line order
        replace(ORDERS, "status: active", "status: actve"),
        replace(ORDERS, "owner:\n", "ownr:\n"),
        replace(ORDERS, "max: 0.1", "max: 1.5"),
        # a domain, a reference and a SQL file elsewhere
        replace(ANALYTICS, "type: aggregate", "type: aggregat"),
        replace(SUMMARY, "product: sales.daily_revenue", "product: sales.daily_revenu"),
        replace(DAILY_SQL, "FROM orders", "FROM ordrs"),
    )


SEVERAL = [
    (ANALYTICS, 5, 1, "invalid value 'aggregat'"),
    (SUMMARY, 11, 5, "unknown product 'sales.daily_revenu'"),
    (DAILY_SQL, 4, 6, "SQL reads table 'ordrs'"),
    (ORDERS, 6, 1, "invalid value 'actve'"),
    (ORDERS, 9, 1, "unknown key 'ownr'"),
    (ORDERS, 41, 5, "'max' must be at most 1"),
]


def test_all_problems_reported_at_once_sorted(mesh_root: Path) -> None:
    _several_errors()(mesh_root)
    root = mesh_root.resolve()
    with pytest.raises(SpecError) as caught:
        load_mesh(root)
    problems = caught.value.problems
    got = [(p.file, p.line, p.column) for p in problems]
    assert got == [(root / f, line, column) for f, line, column, _ in SEVERAL], _show(
        problems, root
    )
    assert got == sorted(got, key=lambda g: (str(g[0]), g[1], g[2]))
    for problem, (_, _, _, words) in zip(problems, SEVERAL, strict=True):
        assert words in problem.message
    assert str(caught.value).startswith(f"{len(SEVERAL)} problems in the mesh specs")


@pytest.mark.slow
def test_cli_prints_all_problems_in_order(mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    _several_errors()(mesh_root)
    root = mesh_root.resolve()
    result = run_meshkit("validate", "--mesh", str(root))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{len(SEVERAL)} problems in the mesh specs" in result.stderr
    offsets = [result.stderr.index(f"{root / f}:{line}:{column}") for f, line, column, _ in SEVERAL]
    assert offsets == sorted(offsets)
