"""YAML syntax errors say the likely cause and the fix, not only where the parser gave up.

Each case edits the orders spec of the test mesh (conftest.py) the way people get YAML wrong,
and expects the problem at an exact line and column, with the cause in the message and the fix
(usually the corrected line) in the hint. The same cases then run together through the real
CLI: one product folder per case, one `meshkit validate`, every problem printed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshkit.errors import Problem, SpecError
from meshkit.specs import load_mesh

RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture

ORDERS = "domains/sales/products/orders/dataproduct.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    old: str  # replaced, once, in the orders spec
    new: str
    line: int
    column: int
    words: tuple[str, ...]  # in the message
    hint: str  # in the hint


CASES = [
    # ------------------------------------------------------- reserved characters
    Case(
        "at-sign-cron",
        'cron: "0 6 * * *"',
        "cron: @daily",
        54,
        9,
        ("invalid YAML", "cannot start with '@'", "quoted"),
        'quote the value: cron: "@daily"',
    ),
    Case(
        "at-sign-with-comment",
        'cron: "0 6 * * *"',
        "cron: @daily  # after the shop closes",
        54,
        9,
        ("cannot start with '@'",),
        'quote the value: cron: "@daily"  # after the shop closes',
    ),
    Case(
        "at-sign-in-brackets",
        "tags: [sales, orders]",
        "tags: [sales, @orders]",
        8,
        15,
        ("cannot start with '@'",),
        'quote the value: tags: [sales, "@orders"]',
    ),
    Case(
        "backtick",
        "description: One row per order placed in the shop.",
        "description: `order_id` identifies an order.",
        7,
        14,
        ("cannot start with a backtick",),
        'quote the value: description: "`order_id` identifies an order."',
    ),
    Case(
        "star-glob",
        "    file: data/orders.parquet",
        "    file: *.parquet",
        15,
        11,
        ("'*' at the start of a value begins an alias",),
        'quote the value: file: "*.parquet"',
    ),
    Case(
        "star-alone",
        "    max: 0.1",
        "    max: *",
        41,
        10,
        ("'*' at the start of a value begins an alias",),
        'quote the value: max: "*"',
    ),
    Case(
        "star-cron-unquoted",
        'cron: "0 6 * * *"',
        "cron: */30 * * * *",
        54,
        9,
        ("begins an alias",),
        'quote the value: cron: "*/30 * * * *"',
    ),
    Case(
        # valid alias syntax, but no anchor of that name: most likely meant as text
        "star-undefined-alias",
        "    file: data/orders.parquet",
        "    file: *orders",
        15,
        11,
        ("'*orders' is an alias", "no anchor '&orders'"),
        "if the '*' is text, quote the value: file: \"*orders\"",
    ),
    # ----------------------------------------------------------------------- tabs
    Case(
        "tab-before-key",
        "  business: bob",
        "\tbusiness: bob",
        11,
        1,
        ("tab character is used for indentation",),
        "use spaces instead",
    ),
    Case(
        "tab-after-spaces",
        "      nullable: false",
        "    \t  nullable: false",
        22,
        5,
        ("tab character is used for indentation",),
        "use spaces instead",
    ),
    # ------------------------------------------------------------ ': ' in a value
    Case(
        "colon-in-value",
        "description: One row per order placed in the shop.",
        "description: Orders: one row per order placed in the shop.",
        7,
        20,
        ("the value contains ': '", "start of a key"),
        'quote the value: description: "Orders: one row per order placed in the shop."',
    ),
    Case(
        "colon-in-list-item",
        "    - name: email\n      type: VARCHAR",
        "    - name: email\n      type: VARCHAR\n      description: Note: may be empty",
        32,
        24,
        ("the value contains ': '",),
        'quote the value: description: "Note: may be empty"',
    ),
    # ------------------------------------------------------------ indentation
    Case(
        "indented-deeper",
        "  business: bob@example.com",
        "    business: bob@example.com",
        11,
        13,
        ("line 11 is indented deeper than the key above it",),
        "indented deeper than 'technical' on line 10: indent it by 2 spaces",
    ),
    Case(
        "indented-between-levels",
        "  business: bob@example.com",
        " business: bob@example.com",
        11,
        2,
        ("line 11 is indented by 1 space", "lines up with no key"),
        "2 spaces (like 'technical' on line 10) or no indentation (like 'owner' on line 9)",
    ),
    Case(
        "list-entry-misaligned",
        "      type: BIGINT\n      nullable: false",
        "      type: BIGINT\n     nullable: false",
        22,
        6,
        ("line 22 is indented by 5 spaces",),
        "6 spaces (like 'type' on line 21) or 4 spaces (like the '-' on line 20)",
    ),
    Case(
        "list-item-among-keys",
        "classification: internal\n",
        "classification: internal\n- internal\n",
        13,
        1,
        ("a list item ('- ') is where the mapping above needs a key",),
        "put the list under a key",
    ),
    Case(
        "key-without-colon",
        "status: active\n",
        "status: active\nowner\n",
        7,
        1,
        ("'owner' on line 7 is not followed by ':'",),
        "write 'key: value'",
    ),
    Case(
        "text-after-closing-quote",
        "description: One row per order placed in the shop.",
        'description: "One row" per order placed in the shop.',
        7,
        24,
        ("text follows the closing quote",),
        "put the whole value inside the quotes",
    ),
    # ------------------------------------------------------------ duplicate keys
    Case(
        "duplicate-nested-key",
        "  business: bob@example.com",
        "  business: bob@example.com\n  technical: carol@example.com",
        12,
        3,
        ("duplicate key 'technical'", "first on line 10"),
        "each key may appear once",
    ),
    # ------------------------------------------------------------ other mistakes
    Case(
        "block-scalar-text-on-same-line",
        "description: One row per order placed in the shop.",
        "description: | One row per order placed in the shop.",
        7,
        16,
        ("text follows '|' or '>' on the same line",),
        "on the next line",
    ),
    Case(
        "impossible-date",
        "version: 1.0.0",
        "version: 1.0.0\ncreated: 2024-02-30",
        6,
        10,
        ("'2024-02-30' reads as a date but is not a valid one",),
        "quote it if it is meant as text",
    ),
    Case(
        "second-document",
        "schedule:",
        "---\nschedule:",
        53,
        1,
        ("a second document starts here",),
        "remove the '---' line",
    ),
]


def _edit(text: str, case: Case) -> str:
    assert text.count(case.old) == 1, f"{case.old!r} must occur once"
    return text.replace(case.old, case.new)


def _only_problem(root: Path) -> Problem:
    with pytest.raises(SpecError) as caught:
        load_mesh(root)
    problems = caught.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_syntax_error_says_cause_and_fix(case: Case, mesh_root: Path) -> None:
    spec = mesh_root / ORDERS
    spec.write_text(_edit(spec.read_text(encoding="utf-8"), case), encoding="utf-8")
    problem = _only_problem(mesh_root.resolve())
    assert problem.file == (mesh_root / ORDERS).resolve()
    assert (problem.line, problem.column) == (case.line, case.column), str(problem)
    for word in case.words:
        assert word in problem.message, f"{word!r} not in {problem.message!r}"
    assert problem.hint is not None
    assert case.hint in problem.hint, f"{case.hint!r} not in {problem.hint!r}"


def test_good_cases_still_load(mesh_root: Path) -> None:
    """Quoted forms of the same values are fine: the messages' fixes work."""
    spec = mesh_root / ORDERS
    text = spec.read_text(encoding="utf-8")
    for old, new in [
        ('cron: "0 6 * * *"', 'cron: "@daily"'),
        ("    file: data/orders.parquet", '    file: "data/orders.parquet"'),
        ("description: One row per order placed in the shop.", 'description: "Orders: `x`"'),
        ("tags: [sales, orders]", 'tags: [sales, "@orders"]'),
    ]:
        text = text.replace(old, new)
    spec.write_text(text, encoding="utf-8")
    product = load_mesh(mesh_root).products["sales.orders"]
    assert product.spec.schedule is not None
    assert product.spec.schedule.cron == "@daily"
    assert product.spec.description == "Orders: `x`"
    assert product.spec.tags == ["sales", "@orders"]


@pytest.mark.slow
def test_cli_prints_cause_and_fix_for_every_case(mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    """One product folder per case, all checked by one real `meshkit validate`."""
    root = mesh_root.resolve()
    text = (root / ORDERS).read_text(encoding="utf-8")
    files = {}
    for case in CASES:
        name = case.id.replace("-", "_")
        file = root / "domains" / "sales" / "products" / name / "dataproduct.yaml"
        file.parent.mkdir(parents=True)
        file.write_text(_edit(text, case).replace("name: orders", f"name: {name}"), "utf-8")
        files[case.id] = file
    result = run_meshkit("validate", "--mesh", str(root))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{len(CASES)} problems in the mesh specs" in result.stderr
    # the CLI prints each hint on the line after its problem
    lines = result.stderr.splitlines()
    for case in CASES:
        where = f"{files[case.id]}:{case.line}:{case.column}: "
        at = [i for i, line in enumerate(lines) if where in line]
        assert len(at) == 1, f"{where} not printed once:\n{result.stderr}"
        for word in case.words:
            assert word in lines[at[0]], lines[at[0]]
        assert case.hint in lines[at[0] + 1], lines[at[0] + 1]
