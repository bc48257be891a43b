"""Benchmark: policy evaluation over a mesh of 1,000 products (issue target: under 2 seconds).

    .venv/bin/python bench/policies_1000.py [--products 1000] [--repeat 3]

Generates a synthetic mesh shaped like the example one: 20 domains of 50 products each; in
every domain, 10 source-aligned products read files, 30 read one or two products of their own
domain, 10 aggregate across domains; about 10 columns each, some PII with masking rules; the
example mesh's global policies (the 11 built-in rules) plus, in every domain, a stricter
quality-slo and a Rego rule scoped to 5% of products. Times, in one process:
  load      load_mesh + policy declaration checks (what `meshkit validate` does before rules)
  evaluate  governance.evaluate over every product: cold (no lineage derived yet: every SQL
            transform is parsed and qualified) and warm (a later run: lineage of unchanged
            transforms comes from the memo in .meshkit/lineage-memo.json)
  command   the whole `meshkit policy check` in a new process (cold), for what a user waits
and prints JSON. Results go into docs/benchmarks.md by hand.
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

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_vs_duckdb import machine  # noqa: E402

EXAMPLE = HERE.parent / "src" / "meshkit" / "demo" / "mesh"

REGO = """package meshkit.bench.consent

import rego.v1

deny contains msg if {
	not "opt_in" in {c.name | some c in input.product.schema.columns}
	msg := {"msg": "a contact product must carry opt_in", "path": "schema.columns"}
}
"""

COLUMNS = [
    ("id", "BIGINT", {"primary_key": True}),
    ("name", "VARCHAR", {"pii": True, "masking": {"rule": "hash"}}),
    ("phone", "VARCHAR", {"pii": True, "masking": {"rule": "partial", "keep": 4}}),
    ("segment", "VARCHAR", {}),
    ("amount", "DECIMAL(15,2)", {}),
    ("quantity", "INTEGER", {}),
    ("placed_on", "DATE", {}),
    ("updated_at", "TIMESTAMP", {}),
    ("region", "VARCHAR", {}),
    ("opt_in", "BOOLEAN", {}),
]


def _product(domain: str, name: str, index: int, upstream: list[str]) -> tuple[dict[str, Any], str]:
    columns = [
        {"name": c, "type": t, "description": f"The {c.replace('_', ' ')} of the record.", **extra}
        for c, t, extra in COLUMNS
    ]
    if upstream:
        inputs = [{"name": f"in{i}", "product": p} for i, p in enumerate(upstream)]
        joins = " ".join(f"join in{i} using (id)" for i in range(1, len(upstream)))
        sql = (
            "select in0.id, in0.name, in0.phone, upper(in0.segment) as segment, "
            "in0.amount * 1.1 as amount, in0.quantity, in0.placed_on, in0.updated_at, "
            f"in0.region, in0.opt_in from in0 {joins} where in0.quantity > {index}"
        )
        sql = sql.replace("in0.amount * 1.1", "CAST(in0.amount * 1.1 AS DECIMAL(15,2))")
    else:
        inputs = [
            {"name": "raw", "file": f"data/{domain}/{name}.parquet", "description": "ERP extract"}
        ]
        sql = "select " + ", ".join(c for c, _, _ in COLUMNS) + f" from raw where id > {index}"
    spec = {
        "apiVersion": "meshkit/v1",
        "kind": "DataProduct",
        "name": name,
        "version": "1.0.0",
        "status": "active",
        "description": f"Synthetic product {index} of the {domain} domain, for the policy benchmark.",
        "tags": ["bench", "fact"] + (["consent"] if index % 20 == 0 else []),
        "owner": {
            "technical": "a@example.com",
            "business": "b@example.com",
            "on_call": "c@example.com",
        },
        "inputs": inputs,
        "transform": {"sql": "transform.sql"},
        "schema": {"columns": columns},
        "quality": [
            {"type": "row_count", "min": 1},
            {"type": "unique", "columns": ["id"]},
            {"type": "accepted_values", "column": "region", "values": ["EU", "US", "APAC"]},
        ],
        "slo": {"freshness": {"max_age": "1d"}},
        "retention": {"period": "3650d", "column": "placed_on"},
        "schedule": {"cron": "0 6 * * *"},
    }
    return spec, sql


def generate(root: Path, products: int) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    mesh = yaml.safe_load((EXAMPLE / "mesh.yaml").read_text())
    mesh["name"] = "bench-mesh"
    (root / "mesh.yaml").write_text(yaml.safe_dump(mesh, sort_keys=False))
    domains = max(1, products // 50)
    per = products // domains
    for d in range(domains):
        domain = f"domain{d:02d}"
        folder = root / "domains" / domain
        (folder / "policies").mkdir(parents=True)
        (folder / "policies" / "consent.rego").write_text(REGO)
        (folder / "domain.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "meshkit/v1",
                    "kind": "Domain",
                    "name": domain,
                    "description": f"Synthetic domain {d}.",
                    "type": "source-aligned",
                    "owner": f"team-{d}",
                    "policies": [
                        {
                            "name": "domain-quality",
                            "rule": "quality-slo",
                            "params": {"min_checks": 3},
                        },
                        {
                            "name": "consent",
                            "rego": "policies/consent.rego",
                            "scope": {"tags": ["consent"]},
                        },
                    ],
                },
                sort_keys=False,
            )
        )
        for i in range(per):
            name = f"product_{i:03d}"
            if i < 10:
                upstream: list[str] = []
            elif i < 40:
                upstream = [f"{domain}.product_{(i * 7) % i:03d}"] + (
                    [f"{domain}.product_{i - 1:03d}"] if i % 2 else []
                )
            else:
                other = f"domain{(d + 1) % domains:02d}"
                upstream = [f"{domain}.product_{i - 30:03d}", f"{other}.product_{i % 10:03d}"]
            spec, sql = _product(domain, name, d * per + i, upstream)
            folder_p = folder / "products" / name
            folder_p.mkdir(parents=True)
            (folder_p / "dataproduct.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
            (folder_p / "transform.sql").write_text(sql + "\n")


def run(root: Path, repeat: int) -> dict[str, Any]:
    from meshkit.governance import engine
    from meshkit.specs import load_mesh
    from meshkit.sql.lineage import LineageCache

    loads, evals, warm = [], [], []
    findings: list[Any] = []
    memo = root / ".meshkit" / "lineage-memo.json"
    for _ in range(repeat):
        engine.clear_caches()
        memo.unlink(missing_ok=True)
        start = time.perf_counter()
        mesh = load_mesh(root)
        problems = engine.check_policies(mesh, now=datetime.now(UTC))
        loads.append(time.perf_counter() - start)
        assert not problems, problems[:3]
        start = time.perf_counter()
        findings = engine.evaluate(mesh, sorted(mesh.products), now=datetime.now(UTC))
        evals.append(time.perf_counter() - start)
        # warm: a later run in a new process, with the lineage memo the first one saved
        first = LineageCache(memo)
        engine.evaluate(mesh, sorted(mesh.products), now=datetime.now(UTC), lineage=first)
        first.save()
        engine.clear_caches()
        later = LineageCache(memo)
        start = time.perf_counter()
        engine.evaluate(mesh, sorted(mesh.products), now=datetime.now(UTC), lineage=later)
        warm.append(time.perf_counter() - start)
    commands = [_command(root) for _ in range(repeat)]
    outcomes: dict[str, int] = {}
    for f in findings:
        outcomes[str(f.outcome)] = outcomes.get(str(f.outcome), 0) + 1
    return {
        "products": len(mesh.products),
        "findings": len(findings),
        "outcomes": outcomes,
        "load_seconds": round(statistics.median(loads), 3),
        "evaluate_cold_seconds": round(statistics.median(evals), 3),
        "evaluate_warm_seconds": round(statistics.median(warm), 3),
        "policy_check_command_seconds": round(statistics.median(commands), 3),
        "evaluate_cold_per_product_ms": round(
            1000 * statistics.median(evals) / len(mesh.products), 3
        ),
    }


def _command(root: Path) -> float:
    """Wall time of the whole `meshkit policy check` command, cold (no lineage memo, a new
    catalog): interpreter start, imports, loading, evaluation, storing 12,050 results."""
    import subprocess

    shutil.rmtree(root / ".meshkit", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "meshkit", "policy", "check", "--format", "json"],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE.parent / ".bench" / "policies")
    args = parser.parse_args()
    generate(args.work, args.products)
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "result": run(args.work, args.repeat),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
