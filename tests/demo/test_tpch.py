"""The TPC-H example data: the tables, the CRM database, and idempotent regeneration."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import time
from pathlib import Path

import duckdb
import pytest

from meshkit.demo import tpch
from meshkit.demo.tpch import TABLES, DemoData, generate, parts_for, tpchgen_executable
from meshkit.errors import MeshkitError

# Rows per table at scale factor 0.01 (lineitem varies with the random number of lines per order).
ROWS_AT_SF001 = {
    "customer": 1500,
    "orders": 15000,
    "part": 2000,
    "supplier": 100,
    "partsupp": 8000,
    "nation": 25,
    "region": 5,
}


def count(files: list[Path]) -> int:
    with duckdb.connect() as con:
        rows = con.execute("SELECT count(*) FROM read_parquet(?)", [[str(f) for f in files]])
        return int(rows.fetchall()[0][0])


def test_every_table_is_written_with_the_expected_rows(demo_data: DemoData) -> None:
    assert demo_data.scale == 0.01
    assert set(demo_data.tables) == set(TABLES)
    for table, rows in ROWS_AT_SF001.items():
        path = demo_data.tables[table]
        assert path == demo_data.root / "tpch" / f"{table}.parquet"
        assert path.is_file()
        assert count(demo_data.files(table)) == rows, table
    assert 55_000 < count(demo_data.files("lineitem")) < 65_000


def test_the_crm_database_has_a_contact_per_customer(demo_data: DemoData) -> None:
    assert demo_data.crm_db == demo_data.root / "crm.db"
    with sqlite3.connect(demo_data.crm_db) as con:
        columns = [row[1] for row in con.execute("PRAGMA table_info(customer_contacts)")]
        rows = con.execute("SELECT * FROM customer_contacts ORDER BY customer_key").fetchall()
    con.close()
    assert columns == ["customer_key", "email", "phone", "marketing_opt_in", "updated_at"]
    assert len(rows) == ROWS_AT_SF001["customer"]
    assert [r[0] for r in rows] == list(range(1, 1501))
    assert rows[41][1] == "customer000000042@example.com"
    emails = [r[1] for r in rows if r[1] is not None]
    assert 0.9 < len(emails) / len(rows) < 1
    assert all(re.fullmatch(r"customer\d{9}@example\.com", e) for e in emails)
    phones = [r[2] for r in rows if r[2] is not None]
    assert all(re.fullmatch(r"\+\d{2} \d{3} \d{3} \d{4}", p) for p in phones)
    assert {r[3] for r in rows} == {0, 1}
    assert not [r for r in rows if r[3] and r[1] is None], "opt-in without an email"
    assert all(re.fullmatch(r"202[34]-\d\d-\d\d \d\d:\d\d:\d\d", r[4]) for r in rows)


def test_the_crm_data_is_deterministic(demo_data: DemoData, tmp_path: Path) -> None:
    again = tmp_path / "crm.db"
    tpch._write_crm(demo_data.files("customer")[0], again)
    query = "SELECT * FROM customer_contacts ORDER BY customer_key"
    first, second = sqlite3.connect(demo_data.crm_db), sqlite3.connect(again)
    try:
        assert first.execute(query).fetchall() == second.execute(query).fetchall()
    finally:
        first.close()
        second.close()


def test_a_second_call_skips_generation(demo_data: DemoData) -> None:
    before = {p: p.stat().st_mtime_ns for p in demo_data.root.rglob("*") if p.is_file()}
    messages: list[str] = []
    started = time.perf_counter()
    again = generate(demo_data.root, scale=demo_data.scale, progress=messages.append)
    assert time.perf_counter() - started < 1
    assert again == demo_data
    assert messages == [f"TPC-H data at scale 0.01 is already in {demo_data.root}"]
    after = {p: p.stat().st_mtime_ns for p in demo_data.root.rglob("*") if p.is_file()}
    assert after == before


def test_another_scale_or_missing_files_regenerate(tmp_path: Path) -> None:
    first = generate(tmp_path, scale=0.001)
    customers = count(first.files("customer"))
    second = generate(tmp_path, scale=0.002)
    assert count(second.files("customer")) == 2 * customers
    first.crm_db.unlink()
    messages: list[str] = []
    third = generate(tmp_path, scale=0.002, progress=messages.append)
    assert third.crm_db.is_file()
    assert any(m.startswith("generating TPC-H tables") for m in messages)
    (tmp_path / "tpch" / "nation.parquet").unlink()
    messages.clear()
    fourth = generate(tmp_path, scale=0.002, progress=messages.append)
    assert fourth.files("nation") == [tmp_path / "tpch" / "nation.parquet"]
    assert any(m.startswith("generating TPC-H tables") for m in messages)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".meshkit-demo.json", "crm.db", "tpch"]


def test_split_tables_are_globs_over_their_files(tmp_path: Path) -> None:
    for name in ("lineitem.1.parquet", "lineitem.2.parquet", "part.parquet", "partsupp.parquet"):
        (tmp_path / name).touch()
    data = DemoData(
        root=tmp_path,
        scale=2,
        tables={"lineitem": tmp_path / "lineitem.*.parquet", "part": tmp_path / "part.parquet"},
        crm_db=tmp_path / "crm.db",
    )
    assert [p.name for p in data.files("lineitem")] == ["lineitem.1.parquet", "lineitem.2.parquet"]
    assert data.files("part") == [tmp_path / "part.parquet"]
    (tmp_path / "part.parquet").unlink()
    assert data.files("part") == []


def test_big_tables_are_split_from_scale_one() -> None:
    assert parts_for(0.01) == parts_for(0.99) == 1
    assert parts_for(1) == 4
    assert parts_for(10) == 40
    assert parts_for(10_000) == 256


def test_a_missing_generator_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MeshkitError, match="tpchgen-cli") as caught:
        tpchgen_executable()
    assert caught.value.hint is not None
    assert "pip install tpchgen-cli" in caught.value.hint
    with pytest.raises(MeshkitError, match="tpchgen-cli"):
        generate(tmp_path / "data", scale=0.01)


def test_the_generator_next_to_python_comes_first() -> None:
    beside = Path(sys.executable).parent / ("tpchgen-cli.exe" if os.name == "nt" else "tpchgen-cli")
    if not beside.is_file():
        pytest.skip("tpchgen-cli is not installed next to this Python")
    assert tpchgen_executable() == beside


@pytest.mark.skipif(os.name == "nt", reason="the fake generator is a shell script")
def test_a_failing_generator_reports_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "tpchgen-cli"
    fake.write_text("#!/bin/sh\necho 'disk full' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(tpch, "tpchgen_executable", lambda: fake)
    with pytest.raises(MeshkitError, match=r"exit code 3.*disk full"):
        generate(tmp_path / "data", scale=0.01)
    assert not (tmp_path / "data" / ".meshkit-demo.json").exists()
    assert not (tmp_path / "data" / ".tpch-staging").exists()


def test_scale_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(MeshkitError, match="scale must be positive"):
        generate(tmp_path, scale=0)
