"""Benchmark: a meshkit build of the largest example product against raw DuckDB, in one run.

    .venv/bin/python bench/build_vs_duckdb.py --scale 1 [--scale 10] [--repeat 3]

For each scale factor it times, each step in a fresh process (so peak memory is that step's own):
  build   `Workspace.build(["sales.order_lines"])`: ingest, contract check, stage, audit, publish
  raw     DuckDB `COPY (the same SQL) TO '...' (FORMAT parquet)` with the same settings
  gate    the quality gate alone (`quality.run_checks`) over the staged files
  scan    one DuckDB full scan of the same staged files (`max()` of every column)
and prints ratios (build/raw, gate/scan) and peak RSS. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PRODUCT = "sales.order_lines"
HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("MESHKIT_BENCH_WORK", HERE.parent / ".bench"))


def prepare(scale: float) -> Path:
    """The example mesh with TPC-H data at `scale`, under .bench/ (reused across runs)."""
    from meshkit.demo import copy_tree, example_mesh_path
    from meshkit.demo.tpch import generate

    root = WORK / f"sf{scale:g}"
    if not (root / "mesh.yaml").is_file():
        copy_tree(example_mesh_path(), root)
    generate(root / "data", scale=scale, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    return root


def step_build(root: Path) -> dict[str, Any]:
    from meshkit.workspace import Workspace

    with Workspace(root) as ws:
        start = time.perf_counter()
        (result,) = ws.build([PRODUCT], force=True)  # a real build every round, not "up to date"
        elapsed = time.perf_counter() - start
        if not result.ok:
            raise SystemExit(f"build failed: {result.error}")
        stage = ws.table_of(PRODUCT) / "data" / str(result.run_id)
        return {
            "seconds": elapsed,
            "timings": result.timings,
            "rows": result.rows,
            "stage": str(stage),
        }


def step_raw(root: Path) -> dict[str, Any]:
    import duckdb

    from meshkit.builder.runner import transform_query
    from meshkit.engines.duckdb import DuckDBEngine
    from meshkit.specs import load_mesh
    from meshkit.sql.generate import copy_to_parquet

    mesh = load_mesh(root)
    product = mesh.products[PRODUCT]
    dest = WORK / "raw-out"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    con = duckdb.connect()
    start = time.perf_counter()
    files = sorted(str(p) for p in (root / "data" / "tpch").glob("lineitem*.parquet"))
    files += sorted(str(p) for p in (root / "data" / "tpch").glob("lineitem/*.parquet"))
    con.execute(f"create view lineitem as select * from read_parquet({files!r})")
    dialect = DuckDBEngine.dialect
    con.execute(copy_to_parquet(transform_query(product, dialect), str(dest)).sql(dialect=dialect))
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed}


def step_gate(root: Path, stage: str) -> dict[str, Any]:
    from meshkit.builder import quality
    from meshkit.engines.base import Source
    from meshkit.engines.duckdb import DuckDBEngine
    from meshkit.specs import load_mesh

    product = load_mesh(root).products[PRODUCT]
    session = DuckDBEngine().session()
    files = sorted(str(p) for p in Path(stage).glob("*.parquet"))
    start = time.perf_counter()
    for name in (quality.STAGED, quality.THIS):
        session.register(Source(name=name, reader="parquet", paths=files))
    rows, results = quality.run_checks(product, session, files=files, now=datetime.now(UTC))
    elapsed = time.perf_counter() - start
    failed = [r.name for r in results if not r.passed]
    return {"seconds": elapsed, "rows": rows, "checks": len(results), "failed": failed}


def step_scan(root: Path, stage: str) -> dict[str, Any]:
    import duckdb

    files = sorted(str(p) for p in Path(stage).glob("*.parquet"))
    con = duckdb.connect()
    columns = [
        r[0] for r in con.execute(f"describe select * from read_parquet({files!r})").fetchall()
    ]
    aggregates = ", ".join(f'max("{c}")' for c in columns)
    start = time.perf_counter()
    con.execute(f"select count(*), {aggregates} from read_parquet({files!r})").fetchall()
    return {"seconds": time.perf_counter() - start}


STEPS = {"build": step_build, "raw": step_raw, "gate": step_gate, "scan": step_scan}


def run_step(step: str, root: Path, *extra: str) -> dict[str, Any]:
    """Run one step in a fresh interpreter; returns its result plus its peak RSS in MiB."""
    out = subprocess.run(
        [sys.executable, __file__, "--step", step, str(root), *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import deltalake
    import duckdb

    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, deltalake {deltalake.__version__}"
    )


def bench(scale: float, repeat: int) -> dict[str, Any]:
    root = prepare(scale)
    print(f"scale factor {scale:g}: warming up", file=sys.stderr)
    run_step("raw", root)  # warm the OS page cache for the input files
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in STEPS}
    for i in range(repeat):
        print(f"  round {i + 1}/{repeat}", file=sys.stderr)
        samples["raw"].append(run_step("raw", root))
        built = run_step("build", root)
        samples["build"].append(built)
        samples["gate"].append(run_step("gate", root, built["stage"]))
        samples["scan"].append(run_step("scan", root, built["stage"]))
    median = {k: statistics.median(s["seconds"] for s in v) for k, v in samples.items()}
    peak = {k: max(s["peak_rss_mib"] for s in v) for k, v in samples.items()}
    input_bytes = sum(p.stat().st_size for p in (root / "data" / "tpch").rglob("lineitem*"))
    return {
        "scale": scale,
        "rows": samples["build"][0]["rows"],
        "input_mib": round(input_bytes / 2**20),
        "median_seconds": {k: round(v, 3) for k, v in median.items()},
        "build_over_raw": round(median["build"] / median["raw"], 3),
        "gate_over_scan": round(median["gate"] / median["scan"], 3),
        "peak_rss_mib": peak,
        "build_stage_timings": {k: round(v, 3) for k, v in samples["build"][-1]["timings"].items()},
        "gate_failed_checks": samples["gate"][-1]["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, action="append", help="TPC-H scale factor (repeatable)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        step, root, *extra = args.step
        result = STEPS[step](Path(root), *extra)
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(json.dumps(result))
        return
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "results": [bench(scale, args.repeat) for scale in (args.scale or [1.0])],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
