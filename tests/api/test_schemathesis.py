"""schemathesis against a real server, every check on (status codes, content types, headers
and bodies against the OpenAPI document, negative and positive data, unsupported methods,
auth, use after free...), all phases (examples, coverage, fuzzing, stateful), as an admin and
as a consumer: no finding."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.served import ADMIN, CONSUMER, Server, StartServer

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = 25  # per operation and phase: about 1,500 requests per run, half a minute


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(access={"query_timeout": "10s"})


@pytest.mark.slow
@pytest.mark.parametrize("who", [CONSUMER, ADMIN], ids=["consumer", "admin"])
def test_schemathesis_finds_nothing(server: Server, who: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"Authorization: Bearer {server.tokens[who]}",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "2",
        "--seed",
        "20261207",  # the same requests on every run: a finding is reproducible
        "--request-timeout",
        "20",
        "--max-response-time",
        "15",
        "--output-truncate",
        "true",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    # its cache of crashes goes into the working folder: keep it out of the repository
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path
    )
    tail = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    summary = run.stdout.split("SUMMARY")[-1]
    operations = len(
        [m for ops in httpx.get(f"{server.url}/openapi.json").json()["paths"].values() for m in ops]
    )
    assert f"Tested: {operations}" in summary, tail  # every operation, none skipped
    cases = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert cases is not None, tail
    assert cases[1] == cases[2], tail
    assert int(cases[1]) > 20 * operations, tail
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, tail
