"""Benchmark: a masked, row-filtered aggregate through meshkit against raw DuckDB, in one run.

    .venv/bin/python bench/query_masked.py --scale 1 [--repeat 5] [--tiny 20] [--profile]

Claim checked: a masked, row-filtered aggregate query on the TPC-H scale factor 1 example costs
at most 1.10x the same query on raw DuckDB over the same table.

Setup, in the benchmark's own copy of the example mesh (.bench/masked-sf<scale>/, never the
repo's): TPC-H data from meshkit.demo.tpch.generate; `customer.customers`, `sales.orders` and
`sales.order_lines` built. The copy differs from the example in two places, so that the largest
product is read through masks and a row filter:
  sales.order_lines  supplier_key is `confidential` with masking {rule: hash}, and
                     access.row_filter is `ship_date >= caller.shipped_since`
  mesh.yaml          svc-reporting@example.com gets the attribute shipped_since: '1994-01-01'
The consumer is svc-reporting@example.com (clearance internal, region EUROPE, member of no
domain), with grants on customer.customers and sales.order_lines requested through
ws.access.request and approved by the owning domain's owner (ws.access.approve).

Measured in one process, sides alternating (and their order swapped every round):
  meshkit       ws.access.query(consumer, SQL): guard, grant lookup, masked + filtered views
                over the published files in a fresh locked-down DuckDB, the query, the audit
                append (SQLite commit)
  raw           a fresh duckdb.connect(), the same aggregate written by hand over read_parquet
                of the same published files, the row filter's literal in WHERE, no masks
  raw_masked    the same as raw with the mask expression written by hand (not in the claim:
                it separates what masking costs from what meshkit's plumbing costs)
Queries: the aggregate over sales.order_lines (the claim: it reads the masked column), the same
without the masked column (row filter only), a smaller one over customer.customers, and a tiny
one (`select 1 ... limit 1` over customer.customers, --tiny runs per round) for the fixed
per-query overhead. Every side's result is checked equal to meshkit's. Prints JSON with
medians over --repeat rounds and the ratios; with --profile, a cProfile of one meshkit
aggregate goes to stderr. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_vs_duckdb import WORK, machine  # noqa: E402

CONSUMER = "svc-reporting@example.com"
SINCE = "1994-01-01"
OWNERS = {
    "customer.customers": "maria.gonzalez@example.com",
    "sales.order_lines": "james.okafor@example.com",
}
PRODUCTS = ["customer.customers", "sales.orders", "sales.order_lines"]
LINES_FILTER = "ship_date >= caller.shipped_since"

# What each side computes. meshkit reads the views (masked columns, filtered rows); raw reads
# the files with the filter's literal in WHERE; raw_masked adds the mask by hand.
# The masks as meshkit writes them (masking.mask: the hash rule is sha256 of the platform's
# secret followed by the text); {key} is filled in with the workspace's secret.
SUPPLIER_HASH = "sha256('{key}' || CAST(supplier_key AS VARCHAR))"
NAME_HASH = "sha256('{key}' || CAST(customer_name AS VARCHAR))"
QUERIES: dict[str, dict[str, str]] = {
    "order_lines_aggregate": {
        "meshkit": (
            "select ship_mode, count(*) as lines, sum(net_amount) as revenue, "
            "count(distinct supplier_key) as suppliers "
            "from sales.order_lines group by ship_mode order by ship_mode"
        ),
        "raw": (
            "select ship_mode, count(*) as lines, sum(net_amount) as revenue, "
            "count(distinct supplier_key) as suppliers "
            f"from read_parquet({{files}}) where ship_date >= '{SINCE}' "
            "group by ship_mode order by ship_mode"
        ),
        "raw_masked": (
            "select ship_mode, count(*) as lines, sum(net_amount) as revenue, "
            f"count(distinct {SUPPLIER_HASH}) as suppliers "
            f"from read_parquet({{files}}) where ship_date >= '{SINCE}' "
            "group by ship_mode order by ship_mode"
        ),
    },
    "order_lines_filter_only": {
        "meshkit": (
            "select ship_mode, count(*) as lines, sum(net_amount) as revenue "
            "from sales.order_lines group by ship_mode order by ship_mode"
        ),
        "raw": (
            "select ship_mode, count(*) as lines, sum(net_amount) as revenue "
            f"from read_parquet({{files}}) where ship_date >= '{SINCE}' "
            "group by ship_mode order by ship_mode"
        ),
    },
    "customers_aggregate": {
        "meshkit": (
            "select market_segment, count(*) as customers, "
            "count(distinct customer_name) as names "
            "from customer.customers group by market_segment order by market_segment"
        ),
        "raw": (
            "select market_segment, count(*) as customers, "
            "count(distinct customer_name) as names "
            "from read_parquet({files}) where region = 'EUROPE' "
            "group by market_segment order by market_segment"
        ),
        "raw_masked": (
            "select market_segment, count(*) as customers, "
            f"count(distinct {NAME_HASH}) as names "
            "from read_parquet({files}) where region = 'EUROPE' "
            "group by market_segment order by market_segment"
        ),
    },
    "tiny": {
        "meshkit": "select 1 as one from customer.customers limit 1",
        "raw": "select 1 as one from read_parquet({files}) where region = 'EUROPE' limit 1",
    },
}
PRODUCT_OF = {
    "order_lines_aggregate": "sales.order_lines",
    "order_lines_filter_only": "sales.order_lines",
    "customers_aggregate": "customer.customers",
    "tiny": "customer.customers",
}


def prepare(scale: float) -> Path:
    """The example mesh, patched (see the module doc), with TPC-H data at `scale`, built."""
    from meshkit.demo import copy_tree, example_mesh_path
    from meshkit.demo.tpch import generate
    from meshkit.workspace import Workspace

    root = WORK / f"masked-sf{scale:g}"
    example = example_mesh_path()
    if not (root / "mesh.yaml").is_file():
        copy_tree(example, root)
    mesh = yaml.safe_load((example / "mesh.yaml").read_text())
    for principal in mesh["access"]["principals"]:
        if principal["name"] == CONSUMER:
            principal.setdefault("attributes", {})["shipped_since"] = SINCE
    (root / "mesh.yaml").write_text(yaml.safe_dump(mesh, sort_keys=False))
    spec_path = Path("domains/sales/products/order_lines/dataproduct.yaml")
    spec = yaml.safe_load((example / spec_path).read_text())
    for column in spec["schema"]["columns"]:
        if column["name"] == "supplier_key":
            column["classification"] = "confidential"
            column["masking"] = {"rule": "hash"}
    spec["access"] = {"row_filter": LINES_FILTER}
    (root / spec_path).write_text(yaml.safe_dump(spec, sort_keys=False))

    generate(root / "data", scale=scale, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    with Workspace(root) as ws:
        missing = [pid for pid in PRODUCTS if ws.snapshot(pid) is None]
        if missing:
            print(f"  building {', '.join(missing)}", file=sys.stderr)
            for result in ws.build(missing):
                if not result.ok:
                    raise SystemExit(f"build of {result.product_id} failed: {result.error}")
        consumer = ws.access.caller(CONSUMER)
        granted = {g.product_id for g in ws.access.grants(consumer)}
        until = datetime.now(UTC) + timedelta(days=30)
        for pid, owner in OWNERS.items():
            if pid in granted:
                continue
            request = ws.access.request(
                consumer, pid, purpose="query benchmark: weekly reporting", until=until
            )
            if request.status != "approved":
                ws.access.approve(ws.access.caller(owner), request.id, "benchmark")
    return root


class Timers:
    """Wall time spent in meshkit's query steps, per query (wrappers cost about a microsecond)."""

    def __init__(self, ws: Any) -> None:
        from meshkit.access import control, guard

        self.spent: dict[str, float] = {}
        control.run = self._wrap("engine", control.run)  # connect, settings, views, the query
        guard.check = self._wrap("guard", guard.check)  # parse, allow-list, product names
        cls = control.AccessControl
        cls._source = self._wrap("sources", cls._source)  # grants, masks, filter, snapshot
        ws.access.emit = self._wrap("audit", ws.access.emit)  # the event: the audit append

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        spent, self.spent = self.spent, {}
        return spent


def run_meshkit(ws: Any, caller: Any, sql: str) -> tuple[float, Any]:
    start = time.perf_counter()
    table = ws.access.query(caller, sql).table
    return time.perf_counter() - start, table


def run_raw(sql: str) -> tuple[float, Any]:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return time.perf_counter() - start, table


def _same(a: Any, b: Any) -> bool:
    return [list(r.values()) for r in a.to_pylist()] == [list(r.values()) for r in b.to_pylist()]


def bench(root: Path, repeat: int, tiny: int, profile: bool) -> dict[str, Any]:
    import duckdb

    from meshkit.workspace import Workspace

    ws = Workspace(root)
    caller = ws.access.caller(CONSUMER)
    files = {
        pid: sorted(f.removeprefix("file://") for f in ws.snapshot(pid).files) for pid in OWNERS
    }
    sql = {
        name: {
            side: q.replace("{files}", repr(files[PRODUCT_OF[name]])).replace(
                "{key}", ws.access.hash_key
            )
            for side, q in sides.items()
        }
        for name, sides in QUERIES.items()
    }
    timers = Timers(ws)

    # warm-up: page cache, imports, the mesh and lineage caches; check every side's result
    for name, sides in sql.items():
        _, expected = run_meshkit(ws, caller, sides["meshkit"])
        for side in sides.keys() - {"meshkit"}:
            _, got = run_raw(sides[side])
            if not _same(expected, got):
                raise SystemExit(f"{name}: {side} differs from meshkit:\n{got}\n{expected}")
    timers.take()

    samples: dict[str, dict[str, list[float]]] = {
        n: {s: [] for s in sides} for n, sides in sql.items()
    }
    steps: dict[str, list[dict[str, float]]] = {n: [] for n in sql}
    for r in range(repeat):
        print(f"  round {r + 1}/{repeat}", file=sys.stderr)
        for name, sides in sql.items():
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for _ in range(tiny if name == "tiny" else 1):
                for side in order:
                    if side == "meshkit":
                        seconds, _ = run_meshkit(ws, caller, sides[side])
                        steps[name].append(timers.take())
                    else:
                        seconds, _ = run_raw(sides[side])
                    samples[name][side].append(seconds)

    profiled = None
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_meshkit(ws, caller, sql["order_lines_aggregate"]["meshkit"])
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        profiled = out.getvalue()
        print(profiled, file=sys.stderr)

    con = duckdb.connect()
    lines = files["sales.order_lines"]
    total = con.execute(f"select count(*) from read_parquet({lines!r})").fetchone()[0]
    kept = con.execute(
        f"select count(*) from read_parquet({lines!r}) where ship_date >= '{SINCE}'"
    ).fetchone()[0]
    con.close()
    ws.close()

    result: dict[str, Any] = {}
    for name, sides in samples.items():
        median = {side: statistics.median(v) for side, v in sides.items()}
        breakdown = {
            k: statistics.median(s.get(k, 0.0) for s in steps[name])
            for k in ("guard", "sources", "engine", "audit")
        }
        breakdown["other"] = max(0.0, median["meshkit"] - sum(breakdown.values()))
        if name == "tiny":
            result["fixed_overhead"] = {
                "queries_per_side": len(sides["meshkit"]),
                "meshkit_ms": round(1000 * median["meshkit"], 2),
                "raw_ms": round(1000 * median["raw"], 2),
                "overhead_ms": round(1000 * (median["meshkit"] - median["raw"]), 2),
                "meshkit_steps_ms": {k: round(1000 * v, 2) for k, v in breakdown.items()},
            }
            continue
        ratios = [m / r for m, r in zip(sides["meshkit"], sides["raw"], strict=True)]
        entry: dict[str, Any] = {
            "median_seconds": {side: round(v, 4) for side, v in median.items()},
            "meshkit_over_raw": round(median["meshkit"] / median["raw"], 3),
            "median_round_ratio": round(statistics.median(ratios), 3),
            "round_ratios_meshkit_over_raw": [round(x, 3) for x in ratios],
        }
        if "raw_masked" in median:
            entry["meshkit_over_raw_masked"] = round(median["meshkit"] / median["raw_masked"], 3)
            entry["raw_masked_over_raw"] = round(median["raw_masked"] / median["raw"], 3)
        entry["meshkit_steps_seconds"] = {k: round(v, 4) for k, v in breakdown.items()}
        result[name] = entry
    result["claim_holds"] = result["order_lines_aggregate"]["meshkit_over_raw"] <= 1.10
    return {
        "scale": float(root.name.removeprefix("masked-sf")),
        "consumer": CONSUMER,
        "order_lines": {
            "rows": total,
            "rows_after_row_filter": kept,
            "files": len(lines),
            "parquet_mib": round(sum(Path(f).stat().st_size for f in lines) / 2**20, 1),
            "row_filter": f"{LINES_FILTER}  (bound: ship_date >= '{SINCE}')",
            "masked_column": "supplier_key: hash (sha256 of the platform secret and the text)",
        },
        "customers_row_filter": "region = caller.region  (bound: region = 'EUROPE')",
        "repeat": repeat,
        "queries": QUERIES,
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tiny", type=int, default=20, help="tiny queries per side per round")
    parser.add_argument("--profile", action="store_true", help="cProfile one meshkit aggregate")
    args = parser.parse_args()
    root = prepare(args.scale)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        **bench(root, args.repeat, args.tiny, args.profile),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
