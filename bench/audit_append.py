"""Benchmark: audit-log appends and verification on a SQLite catalog.

    .venv/bin/python bench/audit_append.py [--single 2000] [--batches 200] [--repeat 3]

Each round starts from a new catalog file and times, in one process:
  single    `AuditLog.record`, one entry per transaction (what a query or an approval costs):
            head lock, hash, a checkpoint every 100 entries, the re-signed head, a commit
  head file the same with a head file (what `Workspace` does): the new signed head also
            written outside the catalog after each commit (lock, read, rename)
  batch     `AuditLog.record_many` with 100 entries per transaction
  verify    `AuditLog.verify` over the whole log (the single and batch entries): every hash
            recomputed, every checkpoint and the head checked against the public key
and prints JSON (medians over the rounds). Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_vs_duckdb import machine  # noqa: E402

BATCH = 100


def one_round(work: Path, single: int, batches: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from meshkit.access.audit import AuditDraft, AuditLog
    from meshkit.catalog import Catalog

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with Catalog(f"sqlite:///{work / 'catalog.db'}") as catalog:
        log_key = Ed25519PrivateKey.generate()
        log = AuditLog(catalog, log_key)
        start = time.perf_counter()
        for i in range(single):
            log.record("ana@example.com", "query", "sales.orders", sql="select * from t", rows=i)
        single_s = time.perf_counter() - start
    with Catalog(f"sqlite:///{work / 'witnessed.db'}") as catalog:
        witnessed = AuditLog(
            catalog, Ed25519PrivateKey.generate(), head_file=work / "audit-head.json"
        )
        start = time.perf_counter()
        for i in range(single):
            witnessed.record(
                "ana@example.com", "query", "sales.orders", sql="select * from t", rows=i
            )
        head_file_s = time.perf_counter() - start
    with Catalog(f"sqlite:///{work / 'catalog.db'}") as catalog:
        log = AuditLog(catalog, log_key)
        drafts = [
            AuditDraft("raj@example.com", "grant.approve", f"sales.p{i}", {"grant": i})
            for i in range(BATCH)
        ]
        start = time.perf_counter()
        for _ in range(batches):
            log.record_many(drafts)
        batch_s = time.perf_counter() - start
        start = time.perf_counter()
        result = log.verify()
        verify_s = time.perf_counter() - start
    if not result.ok:
        raise SystemExit(f"the fresh log does not verify: {result.problem}")
    return {
        "single_per_second": single / single_s,
        "head_file_per_second": single / head_file_s,
        "batch_per_second": batches * BATCH / batch_s,
        "verify_per_second": result.entries / verify_s,
        "verify_seconds": verify_s,
        "entries": result.entries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=2000, help="entries appended one by one")
    parser.add_argument("--batches", type=int, default=200, help=f"batches of {BATCH} entries")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "audit")
    args = parser.parse_args()
    rounds = [one_round(args.work, args.single, args.batches) for _ in range(args.repeat)]
    shutil.rmtree(args.work, ignore_errors=True)

    def median(name: str) -> float:
        return statistics.median(r[name] for r in rounds)

    result: dict[str, Any] = {
        "backend": "sqlite",
        "checkpoint_every": 100,
        "entries_verified": int(median("entries")),
        "append_single_entries_per_second": round(median("single_per_second")),
        "append_single_with_head_file_entries_per_second": round(median("head_file_per_second")),
        "append_batch_100_entries_per_second": round(median("batch_per_second")),
        "verify_entries_per_second": round(median("verify_per_second")),
        "verify_seconds": round(median("verify_seconds"), 3),
    }
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "result": result,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
