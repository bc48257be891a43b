"""A new user's first hour, as the README tells it: clone the repository, install meshkit from
it (`pip install .`, the README's one-line alternative to the set-up script) into a fresh
environment, then run the README's "Your first data product" blocks as written: init, a
product from a CSV with a PII column, validate (the PII policy fires), the fix, build, query.

The blocks are read from README.md, so the test fails when the README stops working."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"^## Your first data product$(.*?)^## ", re.S | re.M)
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)


def readme_blocks() -> list[str]:
    found = SECTION.search((REPO / "README.md").read_text())
    assert found, "README.md has no 'Your first data product' section"
    return BLOCK.findall(found.group(1))


def test_the_readme_walkthrough_works_from_a_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of meshkit to clone")
    clone = tmp_path / "meshkit"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "."],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHKIT_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"  # `source .../activate`
    home = tmp_path / "home"
    home.mkdir()
    init, add_product, fix_and_run = readme_blocks()

    def run(block: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", block],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    first = run(init, home)
    assert first.returncode == 0, first.stderr
    assert "created the mesh 'acme'" in first.stdout
    mesh = home / "acme"

    failing = run(add_product, mesh)
    assert failing.returncode == 7, failing.stdout + failing.stderr  # a required policy fails
    assert "[pii-masking] column 'email' is PII but has no masking rule" in failing.stderr
    assert "Traceback" not in failing.stderr

    fixed = run(fix_and_run, mesh)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "2 products are valid" in fixed.stdout
    assert "shop.customers" in fixed.stdout
    assert "published" in fixed.stdout
    # the query's answer: one customer per country
    for country in ("BR", "FR", "KR", "NG"):
        assert re.search(rf"│ {country}\s+│ 1\s+│", fixed.stdout), fixed.stdout
    # show: the masks a consumer sees
    assert "hash" in fixed.stdout
    assert "redact" in fixed.stdout
