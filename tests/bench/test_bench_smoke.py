"""The benchmark script still runs end to end (timings are not asserted: see docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "build_vs_duckdb.py"


@pytest.mark.slow
def test_build_benchmark_produces_a_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--scale",
            "0.01",
            "--repeat",
            "2",
        ],  # 2: rebuilds of the same data
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "MESHKIT_BENCH_WORK": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (result,) = report["results"]
    assert result["rows"] == 60175  # lineitem at scale factor 0.01
    assert set(result["median_seconds"]) == {"build", "raw", "gate", "scan"}
    assert result["gate_failed_checks"] == []
    assert result["build_over_raw"] > 0
    assert "cores" in report["machine"]
