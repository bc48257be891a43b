"""A check type registered from outside meshkit: one spec model and one class, defined here.

`at_most` says the largest value of a column is at most `max`. It measures `max(column)` in the
one scan, answers from the footers' exact max when they have it, and samples the rows above
the limit, like a built-in check; `quality:` lists accept it, with the same located errors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pytest
from pydantic import Field
from sqlglot import exp

from meshkit.builder import quality
from meshkit.builder.footers import FooterStats
from meshkit.builder.quality import Declared, Verdict, col
from meshkit.engines.base import Source
from meshkit.engines.duckdb import DuckDBSession
from meshkit.errors import BuildError, MeshkitError, SpecError
from meshkit.specs.checks import CheckSpec, check_types, register_check
from meshkit.specs.jsonschema import json_schemas
from meshkit.workspace import Workspace

from conftest import MakeMesh, product_spec

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class AtMostSpec(CheckSpec):
    type: Literal["at_most"]
    column: str
    max: float = Field(description="The largest value allowed.")


class AtMost(Declared[AtMostSpec]):
    def aggregates(self) -> list[exp.Expr]:
        return [exp.Max(this=col(self.spec.column))]

    def from_stats(self, stats: FooterStats) -> list[Any] | None:
        found = stats.column(self.spec.column)
        return [found.max] if found is not None and found.exact_range else None

    def failing_rows(self) -> exp.Expr:
        return exp.GT(this=col(self.spec.column), expression=exp.convert(self.spec.max))

    def judge(self, values: list[Any], rows: int, now: datetime) -> Verdict:
        largest = values[0]
        ok = largest is None or largest <= self.spec.max
        return Verdict(ok, largest, self.spec.max, f"largest {self.spec.column} is {largest}")


@pytest.fixture
def at_most() -> Iterator[None]:
    """Registered for one test only: other tests (the docs' key walk) must not see it."""
    quality.register(AtMostSpec)(AtMost)
    yield
    quality.unregister("at_most")


COLUMNS = [
    {"name": "id", "type": "bigint", "primary_key": True},
    {"name": "email", "type": "varchar", "pii": True},
    {"name": "amount", "type": "bigint"},
]


def amounts_mesh(make_mesh: MakeMesh, checks: list[dict[str, Any]]) -> Path:
    root = make_mesh(
        {"shop": {"orders": product_spec("orders", schema={"columns": COLUMNS}, quality=checks)}}
    )
    (root / "data").mkdir()
    duckdb.execute(
        "copy (select i::bigint as id, 'user' || i || '@example.com' as email, "
        f"(i % 100)::bigint as amount from range(1000) t(i)) to '{root / 'data/orders.parquet'}'"
    )
    return root


@pytest.mark.usefixtures("at_most")
def test_custom_check_passes_and_is_recorded(make_mesh: MakeMesh) -> None:
    root = amounts_mesh(make_mesh, [{"type": "at_most", "column": "amount", "max": 99}])
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.ok, result.error
        check = next(c for c in result.checks if c.type == "at_most")
        assert (check.name, check.column, check.passed) == ("at_most:amount", "amount", True)
        assert (check.measured, check.threshold) == (99, 99)
        assert check.message == "largest amount is 99"
        run = ws.catalog.runs.last("shop.orders")
        assert run is not None
        stored = {q.check_name: q for q in ws.catalog.runs.quality(run.id)}
        assert stored["at_most:amount"].passed is True
        assert stored["at_most:amount"].check_type == "at_most"


@pytest.mark.usefixtures("at_most")
def test_custom_check_fails_the_gate_with_safe_samples(make_mesh: MakeMesh) -> None:
    root = amounts_mesh(
        make_mesh, [{"type": "at_most", "name": "small", "column": "amount", "max": 50}]
    )
    with Workspace(root) as ws:
        (result,) = ws.build()
        assert result.status == "blocked"
        assert type(result.error).__name__ == "QualityGateError"
        assert "small" in str(result.error)
        assert ws.snapshot("shop.orders") is None, "nothing was published"
        failed = next(c for c in result.checks if c.name == "small")
        assert (failed.passed, failed.measured, failed.threshold) == (False, 99, 50)
        assert failed.samples, "the rows above the limit are sampled"
        assert all(row["amount"] > 50 and "email" not in row for row in failed.samples)
        runs = ws.catalog.runs.recent("shop.orders")
        assert runs[0].status == "blocked"
        stored = {q.check_name: q for q in ws.catalog.runs.quality(runs[0].id)}
        assert stored["small"].passed is False
        assert stored["small"].samples == failed.samples


class CountingSession(DuckDBSession):
    def __init__(self) -> None:
        super().__init__(duckdb.connect())
        self.queries: list[str] = []

    def fetch(self, query: exp.Expr, params: Any = ()) -> Any:
        self.queries.append(query.sql(dialect="duckdb"))
        return super().fetch(query, params)


@pytest.mark.usefixtures("at_most")
def test_custom_check_joins_the_one_scan_or_answers_from_footers(make_mesh: MakeMesh) -> None:
    checks = [
        {"type": "at_most", "column": "amount", "max": 99},
        {"type": "range", "column": "amount", "min": 0},
    ]
    root = amounts_mesh(make_mesh, checks)
    files = [str(root / "data/orders.parquet")]
    with Workspace(root) as ws:
        product = ws.mesh.products["shop.orders"]
        for given, queries in ((None, 1), (files, 1)):  # with footers: only the primary key scans
            session = CountingSession()
            session.register(Source(name=quality.STAGED, reader="parquet", paths=files))
            _, results = quality.run_checks(product, session, files=given, now=NOW)
            session.close()
            assert all(r.passed for r in results), [r.message for r in results]
            assert len(session.queries) == queries, session.queries
            if given is not None:
                assert "MAX(" not in session.queries[0].upper(), "the footers answered at_most"


@pytest.mark.usefixtures("at_most")
def test_custom_check_keys_get_located_errors(make_mesh: MakeMesh) -> None:
    root = amounts_mesh(
        make_mesh,
        [{"type": "at_most", "colum": "amount", "max": 1}, {"type": "at_mst", "column": "id"}],
    )
    with pytest.raises(SpecError) as caught:
        Workspace(root).validate()
    found = {(p.path, p.message, p.hint) for p in caught.value.problems}
    assert ("quality[0].colum", "unknown key 'colum'", "did you mean 'column'?") in found
    assert ("quality[1].type", "unknown check type 'at_mst'", "did you mean 'at_most'?") in found


def test_registered_types_are_in_the_schema_and_the_hints(at_most: None) -> None:
    items = json_schemas("DataProduct")["DataProduct"]["properties"]["quality"]["items"]
    assert items["discriminator"]["mapping"]["at_most"] == "#/$defs/AtMostSpec"
    assert "at_most" in check_types()


def test_unregistered_types_are_gone() -> None:
    items = json_schemas("DataProduct")["DataProduct"]["properties"]["quality"]["items"]
    assert "at_most" not in items["discriminator"]["mapping"]
    assert set(items["discriminator"]["mapping"]) == {
        "row_count",
        "null_fraction",
        "unique",
        "accepted_values",
        "range",
        "pattern",
        "freshness",
        "sql",
    }


def test_a_taken_type_name_is_refused(at_most: None) -> None:
    class Other(CheckSpec):
        type: Literal["at_most"]

    with pytest.raises(MeshkitError, match="registered twice"):
        register_check(Other)
    with pytest.raises(MeshkitError, match="registered twice"):
        quality.register(AtMostSpec)(type("AtMostAgain", (AtMost,), {}))


def test_a_dialect_without_a_class_is_an_error(make_mesh: MakeMesh) -> None:
    class Elsewhere(CountingSession):
        dialect = "teradata"

    root = amounts_mesh(make_mesh, [])
    with Workspace(root) as ws:
        session = Elsewhere()
        with pytest.raises(BuildError, match="dialect 'teradata'") as caught:
            quality.run_checks(ws.mesh.products["shop.orders"], session, now=NOW)
        session.close()
    assert "duckdb" in str(caught.value.hint)


PLUGIN = '''"""A check plugin: `even` says every value of a column is even."""

from typing import Literal

from sqlglot import exp

from meshkit.builder.quality import RowCheck, col, register
from meshkit.specs.checks import CheckSpec


class EvenSpec(CheckSpec):
    type: Literal["even"]
    column: str


@register(EvenSpec)
class Even(RowCheck[EvenSpec]):
    def failing_rows(self) -> exp.Expr:
        remainder = exp.Mod(this=col(self.spec.column), expression=exp.convert(2))
        return exp.NEQ(this=exp.paren(remainder), expression=exp.convert(0))

    def failures(self) -> str:
        return f"odd value(s) of {self.spec.column}"
'''


@pytest.fixture
def even_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install a distribution declaring the entry point `even` in `meshkit.checks`."""
    site = tmp_path / "site-packages"
    dist_info = site / "meshkit_even_check-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meshkit-even-check\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        "[meshkit.checks]\neven = meshkit_even_check\n", encoding="utf-8"
    )
    (site / "meshkit_even_check.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield
    quality.unregister("even")
    sys.modules.pop("meshkit_even_check", None)


@pytest.mark.usefixtures("even_plugin")
def test_an_installed_plugin_registers_its_check_type(make_mesh: MakeMesh) -> None:
    root = amounts_mesh(make_mesh, [{"type": "even", "column": "id"}])
    assert "even" not in check_types(), "nothing is imported before the mesh is loaded"
    with Workspace(root) as ws:
        (result,) = ws.build()
    assert result.status == "blocked"
    failed = next(c for c in result.checks if c.type == "even")
    assert (failed.name, failed.measured, failed.message) == (
        "even:id",
        500,
        "500 odd value(s) of id",
    )
    assert failed.samples, "the odd ids are sampled"
    assert all(row["id"] % 2 == 1 for row in failed.samples)
    items = json_schemas("DataProduct")["DataProduct"]["properties"]["quality"]["items"]
    assert "even" in items["discriminator"]["mapping"]
