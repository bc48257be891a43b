"""Example data for the demo mesh: TPC-H tables as Parquet plus a small CRM database in SQLite.

The TPC-H tables come from `tpchgen-cli` (a fast Rust port of the official generator, installed
from PyPI with meshkit). The CRM database is derived from the TPC-H customers, deterministically,
so the demo has a "SQL database" input port next to its files:

    <dest>/
        tpch/customer.parquet, orders.parquet, lineitem.parquet, ...
        crm.db                   SQLite, table customer_contacts
        .meshkit-demo.json       marker: which scale is here (makes generate() idempotent)

From scale factor 1 on, `orders` and `lineitem` are split into several files
(`tpch/lineitem.1.parquet`, `tpch/lineitem.2.parquet`, ...), so engines can read them in
parallel; the example mesh reads them with the globs `data/tpch/orders*.parquet` and
`data/tpch/lineitem*.parquet`, which match both layouts.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meshkit.errors import MeshkitError

TABLES = ("customer", "orders", "lineitem", "part", "supplier", "partsupp", "nation", "region")
SPLIT_TABLES = ("orders", "lineitem")
"""The big tables: written as several files from scale factor 1 on."""

MARKER = ".meshkit-demo.json"
LAYOUT_VERSION = 1
"""Bump when what generate() writes changes, so old data folders are regenerated."""

CRM_TABLE = "customer_contacts"
_BATCH = 10_000

# Contacts as a CRM would hold them: derived from TPC-H customers, deterministic for a given
# customer key. About 3% have no email, about 6% no phone; phones are stored as the CRM's
# users typed them ('+27 918 335 1736'), which the contacts product normalizes to E.164.
# Only customers with an email can have opted in to marketing (about 60% have).
_CRM_EPOCH = datetime(2023, 1, 1, 8, 0, 0)
_CRM_SPREAD_S = 63_072_000  # two years: updated_at falls in 2023 or 2024
_CRM_HASH = 2_654_435_761  # Knuth's multiplicative hash, spreading keys over the two years
_CUSTOMER = pa.schema(
    [("c_custkey", pa.int64()), ("c_name", pa.string()), ("c_phone", pa.string())]
)

_CRM_DDL = f"""
CREATE TABLE {CRM_TABLE} (
    customer_key INTEGER PRIMARY KEY,
    email TEXT,
    phone TEXT,
    marketing_opt_in BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
)
"""


@dataclass(frozen=True)
class DemoData:
    """Where the generated example data is. `tables` maps a TPC-H table to its file, or to a
    glob (`tpch/lineitem.*.parquet`) when the table is split into several files."""

    root: Path
    scale: float
    tables: dict[str, Path]
    crm_db: Path

    def files(self, table: str) -> list[Path]:
        """The Parquet files holding `table` (one, or several when it is split) that exist."""
        path = self.tables[table]
        if "*" in path.name:
            return sorted(path.parent.glob(path.name))
        return [path] if path.is_file() else []


def tpchgen_executable() -> Path:
    """`tpchgen-cli` next to the running Python (the same virtualenv) first, then on PATH."""
    name = "tpchgen-cli.exe" if os.name == "nt" else "tpchgen-cli"
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which("tpchgen-cli")
    if found is None:
        raise MeshkitError(
            "the TPC-H generator 'tpchgen-cli' is not installed",
            hint="pip install tpchgen-cli (it comes with `pip install meshkit`)",
        )
    return Path(found)


def parts_for(scale: float) -> int:
    """How many files the big tables are split into: one below scale 1, then ~4 per scale unit
    (about 50 MB of lineitem Parquet each)."""
    if scale < 1:
        return 1
    return max(2, min(256, round(scale * 4)))


def generate(
    dest: Path, *, scale: float = 0.1, progress: Callable[[str], None] | None = None
) -> DemoData:
    """Write the TPC-H tables and the CRM database under `dest`; skip if already there.

    `scale` is the TPC-H scale factor: 0.01 is 60 thousand order lines (tests), 1 is six
    million (about 300 MB of Parquet), 10 is sixty million.
    """
    if not scale > 0:
        raise MeshkitError(f"scale must be positive, got {scale}", hint="try 0.01, 0.1 or 1")
    report = progress or (lambda _message: None)
    dest = dest.resolve()
    expected = _layout(dest, scale)
    present = all(expected.files(t) for t in TABLES) and expected.crm_db.is_file()
    if present and _marker_matches(dest, scale):
        report(f"TPC-H data at scale {scale:g} is already in {dest}")
        return expected

    dest.mkdir(parents=True, exist_ok=True)
    (dest / MARKER).unlink(missing_ok=True)
    executable = tpchgen_executable()
    staging = dest / ".tpch-staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        parts = parts_for(scale)
        report(f"generating TPC-H tables at scale {scale:g} with {executable.name}")
        small = [t for t in TABLES if parts == 1 or t not in SPLIT_TABLES]
        _run(executable, scale, staging, small, parts=1)
        if parts > 1:
            report(f"generating {', '.join(SPLIT_TABLES)} as {parts} files each")
            _run(executable, scale, staging, list(SPLIT_TABLES), parts=parts)
            for table in SPLIT_TABLES:
                for file in sorted((staging / table).glob(f"{table}.*.parquet")):
                    file.rename(staging / file.name)
                (staging / table).rmdir()
        shutil.rmtree(dest / "tpch", ignore_errors=True)
        staging.rename(dest / "tpch")
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    report(f"writing the CRM database {expected.crm_db.name} ({CRM_TABLE})")
    _write_crm(expected.files("customer")[0], expected.crm_db)
    (dest / MARKER).write_text(
        json.dumps({"scale": scale, "layout": LAYOUT_VERSION, "parts": parts}) + "\n",
        encoding="utf-8",
    )
    report(f"TPC-H data at scale {scale:g} written to {dest}")
    return expected


def _layout(dest: Path, scale: float) -> DemoData:
    tpch = dest / "tpch"
    split = parts_for(scale) > 1
    tables = {
        t: tpch / (f"{t}.*.parquet" if split and t in SPLIT_TABLES else f"{t}.parquet")
        for t in TABLES
    }
    return DemoData(root=dest, scale=scale, tables=tables, crm_db=dest / "crm.db")


def _marker_matches(dest: Path, scale: float) -> bool:
    try:
        marker = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("scale") == scale
        and marker.get("layout") == LAYOUT_VERSION
    )


def _run(executable: Path, scale: float, output: Path, tables: list[str], *, parts: int) -> None:
    command = [
        str(executable),
        "parquet",
        "--scale-factor",
        f"{scale:g}",
        "--output-dir",
        str(output),
        "--tables",
        ",".join(tables),
        "--quiet",
    ]
    if parts > 1:
        command += ["--parts", str(parts)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:
        raise MeshkitError(
            f"cannot run {executable}: {err}", hint="reinstall it: pip install tpchgen-cli"
        ) from err
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise MeshkitError(
            f"tpchgen-cli failed (exit code {result.returncode}): " + " | ".join(detail),
            hint="check free disk space, or try a smaller --scale",
        )


def _write_crm(customer_parquet: Path, crm_db: Path) -> None:
    """Write the CRM database next to the TPC-H data: to a temporary file, then renamed."""
    partial = crm_db.with_name(crm_db.name + ".partial")
    partial.unlink(missing_ok=True)
    customers = pq.read_table(customer_parquet, columns=["c_custkey", "c_name", "c_phone"])
    customers = customers.cast(_CUSTOMER).sort_by("c_custkey")  # (string_view cannot be sorted)
    target = sqlite3.connect(partial)
    try:
        target.execute(_CRM_DDL)
        insert = f"INSERT INTO {CRM_TABLE} VALUES (?, ?, ?, ?, ?)"
        for batch in customers.to_batches(max_chunksize=_BATCH):
            columns = batch.to_pydict()
            target.executemany(
                insert,
                map(_contact, columns["c_custkey"], columns["c_name"], columns["c_phone"]),
            )
        target.commit()
    finally:
        target.close()
    partial.replace(crm_db)


def _contact(key: int, name: str, phone: str) -> tuple[int, str | None, str | None, bool, str]:
    """One CRM row of a TPC-H customer (see the comment above `_CRM_EPOCH`)."""
    has_email = key % 31 != 0
    updated = _CRM_EPOCH + timedelta(seconds=(key * _CRM_HASH) % _CRM_SPREAD_S)
    return (
        key,
        name.replace("#", "").lower() + "@example.com" if has_email else None,
        "+" + phone.replace("-", " ") if key % 17 != 0 else None,
        has_email and (key * 37) % 100 < 62,
        updated.strftime("%Y-%m-%d %H:%M:%S"),
    )
