"""Benchmark: the HTTP API under concurrent load on loopback, and the audit append rate.

    .venv/bin/python bench/api_load.py [--scale 0.1] [--concurrency 8] [--seconds 10]

Setup: the example mesh with TPC-H data at --scale under .bench/api-sf<scale>/ (reused across
runs), `customer.customers` and `sales.orders` built; the consumer lena.schmidt@example.com
(region EUROPE, not a member of the customer domain) holds a grant on customer.customers that
maria.gonzalez@example.com (owner of the customer domain) approved, and a token made with
ws.access.create_token(..., by=LOCAL). The server is `meshkit serve --mesh DIR --port P`
(uvicorn, one worker process) in a subprocess on 127.0.0.1, on a free port.

Load: --concurrency clients (asyncio tasks sharing one httpx.AsyncClient with as many
keep-alive connections), each sending its next request as soon as the last one is answered,
for --seconds per scenario (after a one-second warm-up that is not counted):
  products_list    GET /products?limit=50
  product_detail   GET /products/{id}, cycling over every product
  query            POST /query {"sql": "select region, count(*) from customer.customers
                   group by 1"}: masked, row-filtered (region = 'EUROPE'), audited
For each: requests/s, p50 and p99 latency (ms), errors (any non-2xx answer or transport error;
must be 0), and the CPU the server and this client used (the machine may have few cores).
Then, with the server stopped: the audit log is verified (the queries appended to it from
concurrent requests), and `ws.audit.record(...)` is timed, one entry per call, on the mesh's
SQLite catalog (.meshkit/catalog.db). Prints JSON. Results go into docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_vs_duckdb import WORK, machine  # noqa: E402

CONSUMER = "lena.schmidt@example.com"
OWNER = "maria.gonzalez@example.com"
PRODUCT = "customer.customers"
BUILT = ["customer.customers", "sales.orders"]
QUERY_SQL = "select region, count(*) from customer.customers group by 1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def prepare(scale: float) -> tuple[Path, str]:
    """The built example mesh at `scale`, the consumer's grant, and a new token for it."""
    from meshkit.access.identity import LOCAL
    from meshkit.demo import copy_tree, example_mesh_path
    from meshkit.demo.tpch import generate
    from meshkit.workspace import Workspace

    root = WORK / f"api-sf{scale:g}"
    if not (root / "mesh.yaml").is_file():
        copy_tree(example_mesh_path(), root)
    generate(root / "data", scale=scale, progress=lambda msg: print(f"  {msg}", file=sys.stderr))
    with Workspace(root) as ws:
        missing = [pid for pid in BUILT if ws.snapshot(pid) is None]
        if missing:
            print(f"  building {', '.join(missing)}", file=sys.stderr)
            for result in ws.build(missing):
                if not result.ok:
                    raise SystemExit(f"build of {result.product} failed: {result.error}")
        consumer = ws.access.caller(CONSUMER)
        if PRODUCT not in {g.product_id for g in ws.access.grants(consumer)}:
            request = ws.access.request(
                consumer,
                PRODUCT,
                purpose="API load benchmark: regional customer counts",
                until=datetime.now(UTC) + timedelta(days=30),
            )
            if request.status != "approved":
                ws.access.approve(ws.access.caller(OWNER), request.id, "benchmark")
        _, token = ws.access.create_token(
            CONSUMER, ttl=timedelta(days=1), description="bench/api_load.py", by=LOCAL
        )
    return root, token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(root: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    meshkit = Path(sys.executable).parent / "meshkit"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(meshkit), "serve", "--mesh", str(root), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise SystemExit(f"the server did not answer /health within 60 s; see {log}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def load(
    base: str, token: str, scenario: str, ids: list[str], concurrency: int, seconds: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0

    def next_request() -> tuple[str, str, dict[str, Any] | None]:
        nonlocal counter
        counter += 1
        if scenario == "products_list":
            return "GET", "/products?limit=50", None
        if scenario == "product_detail":
            return "GET", f"/products/{ids[counter % len(ids)]}", None
        return "POST", "/query", {"sql": QUERY_SQL}

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker(deadline: float, record: bool) -> None:
            while time.perf_counter() < deadline:
                method, url, body = next_request()
                start = time.perf_counter()
                try:
                    response = await client.request(method, url, json=body)
                    ok = 200 <= response.status_code < 300
                    kind = str(response.status_code)
                except httpx.HTTPError as err:
                    ok, kind = False, type(err).__name__
                elapsed = time.perf_counter() - start
                if not record:
                    continue
                latencies.append(elapsed)
                if not ok:
                    errors[kind] = errors.get(kind, 0) + 1

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(warm, False) for _ in range(concurrency)))
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + seconds, True) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "wall_seconds": wall,
        "requests_per_second": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * quantiles[98],
        "max_ms": 1000 * max(latencies),
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
    }


def audit_append(root: Path, entries: int) -> dict[str, Any]:
    """Verify the log the load wrote, then time `ws.audit.record`, one entry per call."""
    from meshkit.workspace import Workspace

    with Workspace(root) as ws:
        start = time.perf_counter()
        verified = ws.verify_audit()
        verify_s = time.perf_counter() - start
        ws.audit.record("bench", "bench.warmup", PRODUCT)
        start = time.perf_counter()
        for i in range(entries):
            ws.audit.record(CONSUMER, "query", PRODUCT, sql=QUERY_SQL, decision="allowed", rows=i)
        append_s = time.perf_counter() - start
        checkpoint_every = ws.mesh.spec.settings.audit.checkpoint_every
    return {
        "backend": "sqlite (.meshkit/catalog.db, WAL, synchronous=NORMAL)",
        "checkpoint_every": checkpoint_every,
        "log_entries_before": verified.entries,
        "log_verified_ok": verified.ok,
        "log_problem": verified.problem,
        "verify_seconds": round(verify_s, 3),
        "appended": entries,
        "append_entries_per_second": round(entries / append_s),
        "append_ms_per_entry": round(1000 * append_s / entries, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=0.1, help="TPC-H scale factor")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--audit", type=int, default=2000, help="audit entries to append")
    args = parser.parse_args()
    root, token = prepare(args.scale)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(root, port, root / "bench-server.log")
    results: dict[str, Any] = {}
    try:
        listed = httpx.get(
            f"{base}/products?limit=500", headers={"Authorization": f"Bearer {token}"}
        )
        listed.raise_for_status()
        ids = [p["id"] for p in listed.json()["items"]]
        check = httpx.post(
            f"{base}/query", json={"sql": QUERY_SQL}, headers={"Authorization": f"Bearer {token}"}
        )
        check.raise_for_status()
        answer = check.json()
        for scenario in ("products_list", "product_detail", "query"):
            print(f"  {scenario}: {args.seconds:g} s", file=sys.stderr)
            server_cpu = cpu_seconds(server.pid)
            client_cpu = time.process_time()
            out = asyncio.run(load(base, token, scenario, ids, args.concurrency, args.seconds))
            wall = out.pop("wall_seconds") + 1.0  # the warm-up second used CPU too
            out["server_cpu_cores"] = (cpu_seconds(server.pid) - server_cpu) / wall
            out["client_cpu_cores"] = (time.process_time() - client_cpu) / wall
            results[scenario] = {
                k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()
            }
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "scale": args.scale,
        "server": "meshkit serve (uvicorn, 1 worker process) on 127.0.0.1",
        "client": f"httpx.AsyncClient, {args.concurrency} concurrent keep-alive clients",
        "seconds_per_scenario": args.seconds,
        "consumer": CONSUMER,
        "products_listed": len(ids),
        "query": {
            "sql": QUERY_SQL,
            "rows": answer["rows"],
            "masked": answer["masked"],
        },
        "result": results,
        "audit": audit_append(root, args.audit),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
