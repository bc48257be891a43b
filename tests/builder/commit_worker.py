"""Commits to one Delta table through `DeltaTables.commit`, as fast as it can (not collected).

    python commit_worker.py TABLE NAME COUNT

Publishes COUNT versions, each a one-row Parquet file staged like a build's, with the run id
``NAME-<i>``; on a conflict (another worker committed first) it stages and tries again. Prints
one JSON line per published version: ``{"run_id": ..., "version": <what commit() returned>}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from meshkit.errors import ConflictError
from meshkit.tables.delta import DeltaTables, latest_version


def main() -> int:
    table, name, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    tables = DeltaTables(table.parent)
    for i in range(count):
        run_id = f"{name}-{i}"
        for attempt in range(1000):
            stage = tables.stage_dir(table, f"{run_id}-{attempt}")
            data = pa.table({"run": [run_id]})
            pq.write_table(data, stage / "part-0.parquet")
            try:
                version = tables.commit(
                    table,
                    stage,
                    schema=data.schema,
                    read_version=latest_version(table),
                    metadata={"meshkit.run_id": run_id, "meshkit.product": "shop.runs"},
                    name="shop.runs",
                    description="One row per commit.",
                )
            except ConflictError:
                continue
            print(json.dumps({"run_id": run_id, "version": version}), flush=True)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
