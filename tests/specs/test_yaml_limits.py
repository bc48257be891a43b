"""Hostile YAML: one spec file must not be able to take down CI or the server.

An alias bomb, a value that contains itself, deep nesting and a huge file are each refused with
a located message, and (through the real CLI) at a bounded cost. Legitimate YAML that comes
close (merge keys, a spec of a few hundred KB) still loads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meshkit.errors import Problem, SpecError
from meshkit.specs import load_mesh, yamlcompose, yamlerrors
from meshkit.specs.yamlpos import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    YamlList,
    YamlMap,
    YamlSyntaxError,
    position,
    read_yaml,
)

ORDERS = "domains/sales/products/orders/dataproduct.yaml"


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level repeats the one before nine times (9**9 'lol's, in 600 bytes)."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, levels):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    return text


HOSTILE = {
    "alias-bomb": billion_laughs(),
    "self-reference": "a: &x {b: *x}\n",
    "deep-brackets": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep-dashes": "- " * 100_000 + "x\n",
}


def _problem(file: Path) -> Problem:
    with pytest.raises(YamlSyntaxError) as caught:
        read_yaml(file)
    return caught.value.problem


def _leaves(value: object) -> int:
    return sum(_leaves(v) for v in value) if isinstance(value, list) else 1


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "dataproduct.yaml"
    file.write_text(text, encoding="utf-8")
    return file


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both parsers PyYAML may bring: no recursion in either path, so the limits hold for both."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamlcompose, "_Loader", yaml.SafeLoader)
        monkeypatch.setattr(yamlerrors, "_Loader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML is installed without libyaml")
    return str(request.param)


HOSTILE_WORDS = {
    "alias-bomb": f"makes this file stand for more than {MAX_VALUES:,} values",
    "self-reference": "is inside the value it refers to",
    "deep-brackets": f"nested more than {MAX_DEPTH} levels deep",
    "deep-dashes": f"nested more than {MAX_DEPTH} levels deep",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_yaml_is_refused_by_either_parser(name: str, parser: str, tmp_path: Path) -> None:
    problem = _problem(_write(tmp_path, HOSTILE[name]))
    assert HOSTILE_WORDS[name] in problem.message
    assert problem.line is not None
    assert problem.column is not None
    assert problem.hint


def test_merge_keys_with_either_parser(parser: str, tmp_path: Path) -> None:
    data = read_yaml(_write(tmp_path, "a: &k {x: 1, y: 1}\nb: {<<: *k, y: 2}\n"))
    assert data["b"] == {"x": 1, "y": 2}


# ------------------------------------------------------------------- aliases


def test_alias_bomb_is_refused_at_the_alias_that_crosses_the_budget(tmp_path: Path) -> None:
    problem = _problem(_write(tmp_path, billion_laughs()))
    assert f"more than {MAX_VALUES:,} values" in problem.message
    assert "alias bomb" in problem.message
    # line 6 repeats *e, which stands for 66,430 values: its third use crosses 250,000
    assert (problem.line, problem.column) == (6, 16)
    assert "'*e'" in problem.message
    assert problem.hint is not None
    assert "write the repeated part out" in problem.hint


def test_aliases_within_the_budget_load_and_share_one_value(tmp_path: Path) -> None:
    data = read_yaml(_write(tmp_path, billion_laughs(levels=4)))  # 9**4 = 6561 'lol's
    assert data["d"][0] is data["c"]  # not copied: the budget counts uses, memory does not grow
    assert _leaves(data["d"]) == 9**4
    # an alias's position is where the alias is, not where its anchor is
    assert data["d"].item_pos[1] == (4, 12)


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("a: &x {b: *x}\n", (1, 11)),
        ("a: &x\n  - 1\n  - [2, *x]\n", (3, 9)),
        ("outer: &o\n  inner:\n    again: *o\n", (3, 12)),
    ],
    ids=["flow-mapping", "nested-list", "grandparent"],
)
def test_value_that_contains_itself_is_refused(
    tmp_path: Path, text: str, at: tuple[int, int]
) -> None:
    problem = _problem(_write(tmp_path, text))
    assert "is inside the value it refers to" in problem.message
    assert "infinitely deep" in problem.message
    assert (problem.line, problem.column) == at


def test_undefined_and_duplicate_anchors(tmp_path: Path) -> None:
    problem = _problem(_write(tmp_path, "a: *nowhere\n"))
    assert "no anchor '&nowhere'" in problem.message
    assert (problem.line, problem.column) == (1, 4)
    problem = _problem(_write(tmp_path, "a: &x 1\nb: &x 2\n"))
    assert "anchor '&x' is defined twice (first on line 1)" in problem.message
    assert (problem.line, problem.column) == (2, 4)


# ---------------------------------------------------------------- merge keys

MERGED_ORDERS = """\
apiVersion: meshkit/v1
kind: DataProduct
name: orders
version: 1.0.0
description: Orders, with shared column settings.
owner: &owners
  technical: alice@example.com
  business: bob@example.com
inputs:
  - name: raw_orders
    file: data/orders.parquet
transform:
  sql: transform.sql
schema:
  columns:
    - &key
      name: order_id
      type: BIGINT
      nullable: false
      description: Identifies the order.
    - <<: *key
      name: customer_id
      description: Who ordered.
    - name: amount
      type: DECIMAL(10,2)
    - <<: [{type: VARCHAR}, *key]
      name: status
      nullable: true
    - name: email
      type: VARCHAR
    - name: ordered_at
      type: TIMESTAMP
"""


def test_merge_keys_work_and_own_keys_win(mesh_root: Path) -> None:
    (mesh_root / ORDERS).write_text(MERGED_ORDERS, encoding="utf-8")
    product = load_mesh(mesh_root).products["sales.orders"]
    columns = {c.name: c for c in product.spec.schema_.columns}
    assert columns["customer_id"].type == "BIGINT"
    assert columns["customer_id"].nullable is False
    assert columns["customer_id"].description == "Who ordered."
    # in a list of merged mappings the first one wins, and the mapping's own keys win over both
    assert columns["status"].type == "VARCHAR"
    assert columns["status"].nullable is True
    assert columns["status"].description == "Identifies the order."
    # own keys point at themselves, merged ones at the anchor that defines them
    raw = product.raw
    assert position(raw, ["schema", "columns", 1, "name"]) == (22, 7)
    assert position(raw, ["schema", "columns", 1, "type"]) == (18, 7)


def test_merge_of_a_non_mapping_is_refused(tmp_path: Path) -> None:
    problem = _problem(_write(tmp_path, "a: &a [1, 2]\nb:\n  <<: *a\n"))
    assert "'<<' merges mappings" in problem.message
    assert (problem.line, problem.column) == (3, 3)


def test_merges_count_against_the_budget(tmp_path: Path) -> None:
    """`<<` of a big anchor, many times, is an alias bomb too."""
    big = ", ".join(f"k{i}: {i}" for i in range(1000))
    text = f"base: &b {{{big}}}\n" + "".join(f"m{i}: {{<<: *b}}\n" for i in range(200))
    problem = _problem(_write(tmp_path, text))
    assert f"more than {MAX_VALUES:,} values" in problem.message
    assert problem.line is not None
    assert problem.line < 200


# ------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    ("text", "at"),
    [
        # libyaml >= 0.2.6 scans ahead to its own limit (1000) before we see depth 100
        ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", None),
        ("a: " + "{b: " * 100_000 + "1" + "}" * 100_000 + "\n", (1, 4 + 4 * (MAX_DEPTH - 1))),
        ("- " * 100_000 + "x\n", (1, 1 + 2 * MAX_DEPTH)),
        ("".join(" " * i + "k:\n" for i in range(MAX_DEPTH + 5)), (MAX_DEPTH + 1, MAX_DEPTH + 1)),
        ("a: " + "[" * 100_000 + "\n", None),  # never closed: libyaml's own limit may come first
    ],
    ids=["brackets", "braces", "dashes", "indented-keys", "unclosed-brackets"],
)
def test_deep_nesting_is_refused(tmp_path: Path, text: str, at: tuple[int, int] | None) -> None:
    problem = _problem(_write(tmp_path, text))
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message
    assert problem.hint is not None
    assert "brackets opened and never closed" in problem.hint
    if at is not None:
        assert (problem.line, problem.column) == at
    else:
        assert problem.line == 1
        assert problem.column in (4 + MAX_DEPTH - 1, 4 + 1000 - 1)


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    data = read_yaml(_write(tmp_path, "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"))
    for _ in range(MAX_DEPTH - 2):
        assert isinstance(data, YamlList)
        data = data[0]
    assert data == []


# ---------------------------------------------------------------- size


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    file = _write(tmp_path, "description: " + "x" * 50_000_000 + "\n")
    tracemalloc.start()
    try:
        problem = _problem(file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes allocated: the file was read"
    assert problem.message == ("the file is 47.7 MiB, larger than the 2.0 MiB a spec file may be")
    assert problem.file == file
    assert problem.line is None
    assert problem.hint is not None
    assert "split it" in problem.hint


def test_file_of_exactly_the_limit_loads(tmp_path: Path) -> None:
    head = "description: "
    text = head + "x" * (MAX_FILE_BYTES - len(head) - 1) + "\n"
    file = _write(tmp_path, text)
    assert file.stat().st_size == MAX_FILE_BYTES
    assert len(read_yaml(file)["description"]) == MAX_FILE_BYTES - len(head) - 1
    file.write_text(text + "\n", encoding="utf-8")
    assert "larger than the 2.0 MiB" in _problem(file).message


def test_spec_of_a_few_hundred_kb_loads(mesh_root: Path) -> None:
    """A wide product (3000 documented columns, ~330 KB) is far from every limit."""
    spec = mesh_root / ORDERS
    columns = "".join(
        f"    - name: extra_{i}\n      type: VARCHAR\n"
        f"      description: Extra column number {i} of the orders export.\n      pii: false\n"
        for i in range(3000)
    )
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("  columns:\n", "  columns:\n" + columns),
        encoding="utf-8",
    )
    assert spec.stat().st_size > 300_000
    product = load_mesh(mesh_root).products["sales.orders"]
    assert len(product.spec.schema_.columns) == 3006


def test_dense_file_under_the_size_limit_hits_the_value_budget(tmp_path: Path) -> None:
    file = _write(tmp_path, "a: [" + "1," * (MAX_VALUES + 10) + "]\n")
    assert file.stat().st_size < MAX_FILE_BYTES
    problem = _problem(file)
    assert f"holds more than {MAX_VALUES:,} keys, values and list items" in problem.message
    assert problem.line == 1


def test_fifo_is_refused_without_waiting(mesh_root: Path) -> None:
    spec = mesh_root / ORDERS
    spec.unlink()
    os.mkfifo(spec)
    problem = next(p for p in _load_problems(mesh_root) if p.file == spec.resolve())
    assert "not a regular file" in problem.message


def test_non_utf8_is_located(tmp_path: Path) -> None:
    file = tmp_path / "dataproduct.yaml"
    file.write_bytes(b"name: orders\ndescription: caf\xe9\n")
    problem = _problem(file)
    assert "not UTF-8" in problem.message
    assert (problem.line, problem.column) == (2, 17)


def _load_problems(root: Path) -> list[Problem]:
    with pytest.raises(SpecError) as caught:
        load_mesh(root)
    return caught.value.problems


def test_every_spec_kind_gets_the_limits(mesh_root: Path) -> None:
    """mesh.yaml, domain.yaml and dataproduct.yaml all go through the same bounded reader."""
    for relative in ("mesh.yaml", "domains/analytics/domain.yaml", ORDERS):
        (mesh_root / relative).write_text(billion_laughs(), encoding="utf-8")
    problems = _load_problems(mesh_root)
    bombs = {p.file for p in problems if "alias bomb" in p.message}
    assert bombs == {
        (mesh_root / r).resolve() for r in ("mesh.yaml", "domains/analytics/domain.yaml", ORDERS)
    }


def test_positions_of_the_event_built_values(tmp_path: Path) -> None:
    data = read_yaml(_write(tmp_path, "a:\n  - x: 1\n    y: [2, {z: 3}]\n"))
    assert isinstance(data, YamlMap)
    assert data.pos == (1, 1)
    assert data.key_pos == {"a": (1, 1)}
    items = data["a"]
    assert items.pos == (2, 3)
    assert items.item_pos == [(2, 5)]
    assert items[0].key_pos == {"x": (2, 5), "y": (3, 5)}
    assert items[0]["y"].item_pos == [(3, 9), (3, 12)]


# ------------------------------------------------------- through the real CLI


@dataclass(frozen=True)
class Run:
    returncode: int
    stderr: str
    cpu_seconds: float
    peak_rss_mib: float


# Runs the command given as its arguments and reports that child's CPU time and peak RSS. The
# CLI is started from this small process, not from the test worker: a child's ru_maxrss counts
# the memory it shares with its parent between fork and exec, a whole pytest worker's.
_MEASURE = """
import json, os, resource, subprocess, sys
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, timeout=120).returncode
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
scale = 1024 * 1024 if sys.platform == "darwin" else 1024
print(json.dumps({"returncode": code, "cpu": usage.ru_utime + usage.ru_stime,
                  "rss_mib": usage.ru_maxrss / scale}))
"""


def _run_cli(root: Path, tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHKIT_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            sys.executable,
            "-m",
            "meshkit",
            "validate",
            "--mesh",
            str(root),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=180,
        check=True,
    )
    measured = json.loads(result.stdout)
    return Run(
        returncode=measured["returncode"],
        stderr=result.stderr,
        cpu_seconds=measured["cpu"],
        peak_rss_mib=measured["rss_mib"],
    )


HOSTILE_CLI = {
    **HOSTILE,
    "line-of-50-mb": "description: " + "x" * 50_000_000 + "\n",
}
# where (line:column) and what each is refused with; the deep brackets are caught by libyaml's
# own limit or ours, depending on its version
HOSTILE_MESSAGES = {
    "alias-bomb": r":6:16: invalid YAML: the alias '\*e' makes this file stand for more than",
    "self-reference": r":1:11: invalid YAML: the alias '\*x' is inside the value it refers to",
    "deep-brackets": r":1:\d+: invalid YAML: mappings and lists are nested more than 100 levels",
    "deep-dashes": r":1:201: invalid YAML: mappings and lists are nested more than 100 levels",
    "line-of-50-mb": r": the file is 47.7 MiB, larger than the 2.0 MiB a spec file may be",
}


def _baseline(root: Path, tmp_path: Path) -> Run:
    """The same command on the same mesh with an ordinary one-line syntax error in the file:
    what any rejected spec costs (interpreter start, imports, the other files)."""
    (root / ORDERS).write_text("cron: @daily\n", encoding="utf-8")
    run = _run_cli(root, tmp_path)
    assert run.returncode == 2, run.stderr
    assert "quote the value" in run.stderr
    return run


@pytest.mark.slow
def test_cli_rejects_hostile_files_quickly_and_cheaply(mesh_root: Path, tmp_path: Path) -> None:
    """Acceptance: each rejected within 2 s and 200 MiB, with a located error and its fix.

    Measured over a baseline (a rejected one-line spec), because starting the CLI alone costs
    about a second and most of 200 MiB (it imports DuckDB, delta-rs, pyarrow); and in CPU
    time rather than wall time, so that other processes on the machine do not count."""
    root = mesh_root.resolve()
    baseline = _baseline(root, tmp_path)
    for name, text in HOSTILE_CLI.items():
        (root / ORDERS).write_text(text, encoding="utf-8")
        run = _run_cli(root, tmp_path)
        assert run.returncode == 2, (name, run.stderr)
        assert "Traceback" not in run.stderr, name
        assert "internal error" not in run.stderr, name
        where = re.escape(str(root / ORDERS))
        assert re.search(where + HOSTILE_MESSAGES[name], run.stderr), (name, run.stderr)
        assert "hint: " in run.stderr, name
        assert run.cpu_seconds - baseline.cpu_seconds < 2.0, (name, run, baseline)
        assert run.peak_rss_mib - baseline.peak_rss_mib < 200, (name, run, baseline)
