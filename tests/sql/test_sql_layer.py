"""`meshkit.sql` is the bottom layer: what it imports, how a dialect's native support is found,
and the lineage memo the Workspace owns."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import sqlglot

from meshkit.sql import functions, lineage, native
from meshkit.sql.duckdb_native import NATIVE
from meshkit.sql.lineage_cache import LineageCache
from meshkit.sql.lineage_resolver import ColumnSource
from meshkit.sql.types import normalize_type

PACKAGE = Path(__file__).parents[2] / "src" / "meshkit"


def _imports(folder: str) -> dict[str, set[str]]:
    """The meshkit modules each module under `folder` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(PACKAGE))] = {n for n in names if n.startswith("meshkit")}
    return found


def test_sql_imports_only_itself_and_the_errors() -> None:
    for module, names in _imports("sql").items():
        assert names <= {"meshkit.errors", *(n for n in names if n.startswith("meshkit.sql"))}, (
            module
        )


def test_specs_import_nothing_from_access() -> None:
    for module, names in _imports("specs").items():
        assert not [n for n in names if n.startswith("meshkit.access")], module


def test_dialect_neutral_modules_do_not_name_an_engine() -> None:
    """What is DuckDB's own lives in engines/ and the sql/duckdb_* modules."""
    named = re.compile(r"duckdb")
    neutral = [p for p in (PACKAGE / "sql").glob("*.py") if not p.name.startswith("duckdb_")]
    for path in neutral:
        assert not named.search(path.read_text()), path.name


def test_native_support_is_found_by_the_dialect_name() -> None:
    assert native.native("duckdb") is NATIVE
    assert isinstance(NATIVE, native.NativeSql)
    assert native.native("postgres") is None  # no native module: sqlglot alone
    assert native.native("../duckdb") is None  # not a module name


def test_without_a_native_catalog_every_function_is_refused() -> None:
    tree = sqlglot.parse_one("select upper(a), my_udf(b) from t", dialect="postgres")
    assert functions.denied_function(tree, "postgres") == "upper"
    assert functions.allowed_functions("postgres") == frozenset()
    assert (
        functions.denied_function(
            sqlglot.parse_one("select upper(a) from t", dialect="duckdb"), "duckdb"
        )
        is None
    )


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("int8", "BIGINT"), ("string", "VARCHAR"), ("int", "INTEGER"), ("list(int)", "INTEGER[]")],
)
def test_types_are_spelled_in_the_dialect(written: str, canonical: str) -> None:
    assert normalize_type(written, "duckdb") == canonical


def test_the_lineage_memo_persists_between_caches(tmp_path: Path) -> None:
    memo = tmp_path / ".meshkit" / "lineage-memo.json"
    inputs = {"people": ["id", "email"]}
    first = LineageCache(memo)
    derived = lineage.column_lineage(
        "select email as contact from people", inputs, dialect="duckdb", cache=first
    )
    assert derived == {"contact": frozenset({ColumnSource("people", "email")})}
    first.save()
    assert memo.exists()
    [digest] = json.loads(memo.read_text())  # what the first cache wrote
    later = LineageCache(memo)
    assert digest in later
    assert len(later) == 0
    assert later.get(digest) == derived


def test_a_broken_memo_file_is_empty(tmp_path: Path) -> None:
    memo = tmp_path / "memo.json"
    memo.write_text("{not json")
    cache = LineageCache(memo)
    assert "anything" not in cache
    cache.save()  # nothing grew: the file is left as it is
    assert memo.read_text() == "{not json"


def test_the_dialect_is_part_of_the_memo_key() -> None:
    cache = LineageCache()
    inputs = {"t": ["a"]}
    lineage.column_lineage("select a from t", inputs, dialect="duckdb", cache=cache)
    lineage.column_lineage("select a from t", inputs, dialect="postgres", cache=cache)
    assert len(cache) == 2


def test_spec_types_follow_the_dialect_of_the_validation_context() -> None:
    from meshkit.specs.product import Column

    assert Column.model_validate({"name": "a", "type": "int8"}).type == "BIGINT"
    typed = Column.model_validate({"name": "a", "type": "int8"}, context={"dialect": "duckdb"})
    assert typed.type == "BIGINT"
