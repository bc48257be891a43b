"""A bad cron expression names the field that is wrong and what it allows."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from meshkit.errors import SpecError
from meshkit.specs import load_mesh
from meshkit.specs.cron import MAX_CRON_CHARS, cron_problem

RunMeshkit = Callable[..., subprocess.CompletedProcess[str]]  # the run_meshkit fixture

ORDERS = "domains/sales/products/orders/dataproduct.yaml"

VALID = [
    "0 6 * * *",
    "*/15 * * * *",
    "0 8 * * 1-5",
    "0 8 * * MON-FRI",
    "0 8 * * mon,wed,fri",
    "0 0 1 JAN,JUL *",
    "30 4 1,15 * *",
    "0 0 L * *",  # last day of the month
    "0 0 15W * *",  # weekday nearest the 15th
    "0 9 * * 1#2",  # second Monday
    "0 6 * * 7",  # Sunday, as 7
    "5-55/10 * * * *",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
]


@pytest.mark.parametrize("expression", VALID)
def test_valid_expressions_pass(expression: str) -> None:
    assert cron_problem(expression) is None


INVALID = [
    # (expression, words in the message, words in the hint)
    ("0 25 * * *", "the hour field is 25, but hours run 0-23", "fix the hour field"),
    ("60 6 * * *", "the minute field is 60, but minutes run 0-59", "fix the minute field"),
    ("0 6 0 * *", "the day-of-month field is 0, but days of the month run 1-31", "day-of-month"),
    ("0 6 32 * *", "the day-of-month field is 32", "fix the day-of-month field"),
    ("0 6 * 13 *", "the month field is 13, but months run 1-12 (or JAN-DEC)", "fix the month"),
    ("0 6 * * 8", "the day-of-week field is 8, but days of the week run 0-7 (or SUN-SAT)", "week"),
    ("0 20-25 * * *", "the hour field has 25 (in '20-25'), but hours run 0-23", "hour"),
    ("0 6,12,24 * * *", "the hour field has 24 (in '24'), but hours run 0-23", "hour"),
    ("-5 * * * *", "the minute field has '-5', but minutes run 0-59", "minute"),
    ("0 6 * JANUAR *", "'JANUAR', which is not a month name (JAN, FEB", "month"),
    (
        "0 6 * * MONN",
        "'MONN', which is not a day name (SUN, MON, TUE, WED, THU, FRI, SAT); did you mean 'MON'?",
        "fix the day-of-week field",
    ),
    ("0 MON * * *", "'MON', a name that belongs in the day-of-week field", "fix the hour field"),
    ("0 6 * * 1#6", "'1#6': the week after '#' runs 1-5", "day-of-week"),
    ("*/0 * * * *", "'*/0': the step must be at least 1", "minute"),
    ("*/x * * * *", "'*/x': the step after '/' must be a whole number", "minute"),
    ("*/5/2 * * * *", "'*/5/2', with more than one '/'", "minute"),
    ("1-2-3 * * * *", "'1-2-3', which is not a number, a range (a-b) or a step (*/n)", "minute"),
    ("0,,30 6 * * *", "the minute field '0,,30' has an empty entry", "minute"),
    ("0 6 * *", "it has 4 fields, but a cron expression has five", "use five fields"),
    ("0 0 6 * * *", "it has 6 fields, but a cron expression has five (seconds and years", "five"),
    ("", "it is empty", "use five fields"),
    ("@dayly", "'@dayly' is not a cron shortcut", "did you mean '@daily'?"),
    ("@often", "'@often' is not a cron shortcut", "@daily"),
    ("0 6 * * * " * 40, f"({len(('0 6 * * * ' * 40).strip())} characters)", "five fields"),
]


@pytest.mark.parametrize(("expression", "words", "hint"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_expression_names_the_field(expression: str, words: str, hint: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None
    message, fix = problem
    assert message.startswith("invalid cron expression")
    assert words in message
    assert hint in fix


def test_long_expression_is_refused_before_croniter() -> None:
    valid_but_long = ",".join(["1"] * MAX_CRON_CHARS) + " * * * *"
    problem = cron_problem(valid_but_long)
    assert problem is not None
    assert "characters" in problem[0]


def _set_cron(root: Path, cron: str) -> None:
    spec = root / ORDERS
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace('cron: "0 6 * * *"', f'cron: "{cron}"'), encoding="utf-8")


def test_bad_cron_is_located_at_schedule_cron(mesh_root: Path) -> None:
    _set_cron(mesh_root, "0 6 * * 8")
    with pytest.raises(SpecError) as caught:
        load_mesh(mesh_root)
    (problem,) = caught.value.problems
    assert problem.path == "schedule.cron"
    assert (problem.line, problem.column) == (54, 3)
    assert "the day-of-week field is 8" in problem.message


@pytest.mark.slow
def test_cli_names_the_wrong_cron_field(mesh_root: Path, run_meshkit: RunMeshkit) -> None:
    root = mesh_root.resolve()
    _set_cron(root, "0 25 * * *")
    result = run_meshkit("validate", "--mesh", str(root))
    assert result.returncode == 2, result.stderr
    assert (
        f"{root / ORDERS}:54:3 schedule.cron: invalid cron expression '0 25 * * *': "
        "the hour field is 25, but hours run 0-23"
    ) in result.stderr
    assert "hint: fix the hour field; the five fields are minute hour day-of-month" in (
        result.stderr
    )
